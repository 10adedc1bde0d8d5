import SparrowCore
import SparrowEncoder

/// The vectors-file line format shared with `shared/bench/data`:
/// `{"id": "...", "vector": {"token": weight, ...}}`, tokens in id order.
public enum VectorRecord {
    /// One JSONL line (with its newline) for `vector`, tokens spelled by `vocabulary`.
    public static func line(id: String, vector: SparseVector, vocabulary: Vocabulary) -> String {
        var out = "{\"id\": " + JSONText.quoted(id) + ", \"vector\": {"
        for (index, (term, weight)) in vector.entries.enumerated() {
            if index > 0 { out += ", " }
            out += JSONText.quoted(vocabulary.tokens[Int(term)])
            out += ": "
            out += "\(weight)"
        }
        out += "}}\n"
        return out
    }
}
