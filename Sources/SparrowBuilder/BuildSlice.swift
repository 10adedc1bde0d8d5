/// Which slice of a sliced build this process encodes: given as `I/M`, or `auto`, taken from
/// the batch system that started it:
/// - a Kubernetes Indexed Job: `JOB_COMPLETION_INDEX` (set by Kubernetes) of `JOB_COMPLETIONS`
///   (the Job's `.spec.completions`, which Kubernetes does not pass on: the Job sets it, as
///   `deploy/k8s/build-job.yaml` does);
/// - a Slurm job array: `SLURM_ARRAY_TASK_ID` − `SLURM_ARRAY_TASK_MIN` (0 when unset) of
///   `SLURM_ARRAY_TASK_COUNT` (`deploy/slurm/build.sbatch`).
public enum BuildSlice {
    public static func parse(_ text: String, environment: [String: String]) throws -> (index: Int, count: Int) {
        guard text == "auto" else {
            let parts = text.split(separator: "/", omittingEmptySubsequences: false).map { Int($0) }
            guard parts.count == 2, let index = parts[0], let count = parts[1] else {
                throw BuilderError.slice("--slice takes I/M (e.g. 0/4) or auto, not '\(text)'")
            }
            return try checked(index, count, from: "--slice \(text)")
        }
        if let index = environment["JOB_COMPLETION_INDEX"] {
            guard let count = environment["JOB_COMPLETIONS"] else {
                throw BuilderError.slice("--slice auto in a Kubernetes Indexed Job needs JOB_COMPLETIONS, the Job's .spec.completions, in the pod's environment (see deploy/k8s/build-job.yaml)")
            }
            return try checked(number(index, "JOB_COMPLETION_INDEX"), number(count, "JOB_COMPLETIONS"), from: "JOB_COMPLETION_INDEX=\(index) JOB_COMPLETIONS=\(count)")
        }
        if let id = environment["SLURM_ARRAY_TASK_ID"] {
            guard let count = environment["SLURM_ARRAY_TASK_COUNT"] else {
                throw BuilderError.slice("--slice auto in a Slurm job array needs SLURM_ARRAY_TASK_COUNT (Slurm sets it for arrays: sbatch --array)")
            }
            let minimum = try environment["SLURM_ARRAY_TASK_MIN"].map { try number($0, "SLURM_ARRAY_TASK_MIN") } ?? 0
            return try checked(number(id, "SLURM_ARRAY_TASK_ID") - minimum, number(count, "SLURM_ARRAY_TASK_COUNT"),
                               from: "SLURM_ARRAY_TASK_ID=\(id) SLURM_ARRAY_TASK_MIN=\(minimum) SLURM_ARRAY_TASK_COUNT=\(count)")
        }
        throw BuilderError.slice("--slice auto found neither a Kubernetes Indexed Job (JOB_COMPLETION_INDEX) nor a Slurm job array (SLURM_ARRAY_TASK_ID); give --slice I/M")
    }

    private static func number(_ text: String, _ name: String) throws -> Int {
        guard let value = Int(text) else { throw BuilderError.slice("\(name) is '\(text)', not a whole number") }
        return value
    }

    private static func checked(_ index: Int, _ count: Int, from source: String) throws -> (index: Int, count: Int) {
        guard count >= 1, (0..<count).contains(index) else {
            throw BuilderError.slice("\(source): slice \(index) of \(count); the slice must be between 0 and the count − 1")
        }
        return (index, count)
    }
}
