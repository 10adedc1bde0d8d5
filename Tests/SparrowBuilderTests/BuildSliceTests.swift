import SparrowBuilder
import Testing

/// `--slice I/M` and `--slice auto` from a Kubernetes Indexed Job or a Slurm job array.
@Suite struct BuildSliceTests {
    func parse(_ text: String, _ environment: [String: String] = [:]) throws -> (Int, Int) {
        let slice = try BuildSlice.parse(text, environment: environment)
        return (slice.index, slice.count)
    }

    @Test func explicitSlices() throws {
        #expect(try parse("0/4") == (0, 4))
        #expect(try parse("3/4") == (3, 4))
        #expect(try parse("0/1") == (0, 1))
    }

    @Test func kubernetesIndexedJob() throws {
        #expect(try parse("auto", ["JOB_COMPLETION_INDEX": "2", "JOB_COMPLETIONS": "3"]) == (2, 3))
        // Kubernetes wins over Slurm variables inherited from elsewhere.
        #expect(try parse("auto", ["JOB_COMPLETION_INDEX": "0", "JOB_COMPLETIONS": "2", "SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_COUNT": "9"]) == (0, 2))
    }

    @Test func slurmJobArrayCountsFromItsFirstTask() throws {
        #expect(try parse("auto", ["SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "4"]) == (0, 4))
        // sbatch --array=1-4: tasks 1…4 are slices 0…3.
        #expect(try parse("auto", ["SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "4"]) == (3, 4))
    }

    @Test func whatIsWrongIsNamed() {
        for (text, environment, words) in [
            ("2/2", [:], "slice 2 of 2"), ("1-4", [:], "takes I/M"), ("a/4", [:], "takes I/M"), ("1/", [:], "takes I/M"), ("0/0", [:], "slice 0 of 0"),
            ("auto", [:], "neither a Kubernetes Indexed Job"),
            ("auto", ["JOB_COMPLETION_INDEX": "1"], "needs JOB_COMPLETIONS"),
            ("auto", ["JOB_COMPLETION_INDEX": "x", "JOB_COMPLETIONS": "2"], "JOB_COMPLETION_INDEX is 'x'"),
            ("auto", ["JOB_COMPLETION_INDEX": "2", "JOB_COMPLETIONS": "2"], "slice 2 of 2"),
            ("auto", ["SLURM_ARRAY_TASK_ID": "1"], "needs SLURM_ARRAY_TASK_COUNT"),
            ("auto", ["SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "4"], "slice -1 of 4"),
        ] as [(String, [String: String], String)] {
            let error = #expect(throws: BuilderError.self, "\(text) \(environment)") { try parse(text, environment) }
            #expect(error?.description.contains(words) == true, "\(text) \(environment): \(error?.description ?? "")")
        }
    }
}
