import Foundation

extension WordPieceTokenizer {
    /// Loads the tokenizer of a Hugging Face model folder: `tokenizer.json` when present,
    /// else `vocab.txt` with `tokenizer_config.json` settings.
    public static func load(modelDirectory: String) throws -> WordPieceTokenizer {
        let jsonPath = (modelDirectory as NSString).appendingPathComponent("tokenizer.json")
        if FileManager.default.fileExists(atPath: jsonPath) {
            return try load(tokenizerJSON: jsonPath)
        }
        let vocabPath = (modelDirectory as NSString).appendingPathComponent("vocab.txt")
        guard FileManager.default.fileExists(atPath: vocabPath) else {
            throw EncoderError.missingFile(path: jsonPath, reason: "neither tokenizer.json nor vocab.txt is present")
        }
        let configPath = (modelDirectory as NSString).appendingPathComponent("tokenizer_config.json")
        let config = FileManager.default.fileExists(atPath: configPath) ? try JSONFile.object(at: configPath) : [:]
        let vocabulary = try Vocabulary.load(vocabTxt: vocabPath)
        let lowercase = config["do_lower_case"] as? Bool ?? true
        let normalizer = BertNormalizer(
            cleanText: true,
            handleChineseChars: config["tokenize_chinese_chars"] as? Bool ?? true,
            lowercase: lowercase,
            stripAccents: config["strip_accents"] as? Bool
        )
        let special = try specialTokens(vocabulary: vocabulary, config: config, path: vocabPath)
        let added = special.all.map { (content: vocabulary.tokens[Int($0)], id: $0) }
        let maxLength = min(config["model_max_length"] as? Int ?? 512, 512)
        try checkMaxLength(maxLength, path: configPath, field: "model_max_length")
        return WordPieceTokenizer(vocabulary: vocabulary, normalizer: normalizer, special: special, addedTokens: added, maxLength: maxLength)
    }

    /// Loads a `tokenizer.json` whose model is WordPiece with a `BertNormalizer`.
    public static func load(tokenizerJSON path: String) throws -> WordPieceTokenizer {
        let root = try JSONFile.object(at: path)
        guard let model = root["model"] as? [String: Any] else {
            throw EncoderError.invalidTokenizer(path: path, reason: "field 'model' is missing")
        }
        guard (model["type"] as? String) == "WordPiece" else {
            throw EncoderError.invalidTokenizer(path: path, reason: "model.type is '\(model["type"] ?? "nil")', expected 'WordPiece'")
        }
        guard let vocabMap = model["vocab"] as? [String: Int] else {
            throw EncoderError.invalidTokenizer(path: path, reason: "model.vocab is missing or not a {token: id} map")
        }
        let vocabulary = try Vocabulary.fromMap(vocabMap, path: path)
        var normalizer = BertNormalizer()
        if let spec = root["normalizer"] as? [String: Any] {
            guard (spec["type"] as? String) == "BertNormalizer" else {
                throw EncoderError.invalidTokenizer(path: path, reason: "normalizer.type is '\(spec["type"] ?? "nil")', expected 'BertNormalizer'")
            }
            normalizer = BertNormalizer(
                cleanText: spec["clean_text"] as? Bool ?? true,
                handleChineseChars: spec["handle_chinese_chars"] as? Bool ?? true,
                lowercase: spec["lowercase"] as? Bool ?? true,
                stripAccents: spec["strip_accents"] as? Bool
            )
        }
        var added: [(content: String, id: Int32)] = []
        for (index, entry) in (root["added_tokens"] as? [[String: Any]] ?? []).enumerated() {
            if let content = entry["content"] as? String, let id = entry["id"] as? Int {
                // An id past the vocabulary would index the IDF table and the model's output out of range.
                guard (0..<vocabulary.count).contains(id) else {
                    throw EncoderError.invalidTokenizer(
                        path: path, reason: "added_tokens[\(index)] ('\(content)') has id \(id), outside the vocabulary's \(vocabulary.count) tokens")
                }
                added.append((content, Int32(id)))
            }
        }
        let configPath = ((path as NSString).deletingLastPathComponent as NSString).appendingPathComponent("tokenizer_config.json")
        let config = FileManager.default.fileExists(atPath: configPath) ? try JSONFile.object(at: configPath) : [:]
        let special = try specialTokens(vocabulary: vocabulary, config: config, path: path)
        let truncation = root["truncation"] as? [String: Any]
        let maxLength = min(truncation?["max_length"] as? Int ?? config["model_max_length"] as? Int ?? 512, 512)
        try checkMaxLength(maxLength, path: path, field: truncation?["max_length"] != nil ? "truncation.max_length" : "model_max_length")
        return WordPieceTokenizer(
            vocabulary: vocabulary,
            normalizer: normalizer,
            special: special,
            addedTokens: added,
            continuingPrefix: model["continuing_subword_prefix"] as? String ?? "##",
            maxInputCharsPerWord: model["max_input_chars_per_word"] as? Int ?? 100,
            maxLength: maxLength
        )
    }

    /// A sequence holds [CLS], at least one token and [SEP].
    private static func checkMaxLength(_ maxLength: Int, path: String, field: String) throws {
        guard maxLength >= 3 else {
            throw EncoderError.invalidTokenizer(path: path, reason: "\(field) is \(maxLength); a sequence needs at least 3 tokens ([CLS], one token, [SEP])")
        }
    }

    private static func specialTokens(vocabulary: Vocabulary, config: [String: Any], path: String) throws -> SpecialTokens {
        func lookup(_ key: String, _ fallback: String) throws -> Int32 {
            let token = config[key] as? String ?? fallback
            guard let id = vocabulary.id(token) else {
                throw EncoderError.invalidTokenizer(path: path, reason: "special token \(key) '\(token)' is not in the vocabulary")
            }
            return id
        }
        return SpecialTokens(
            pad: try lookup("pad_token", "[PAD]"),
            unk: try lookup("unk_token", "[UNK]"),
            cls: try lookup("cls_token", "[CLS]"),
            sep: try lookup("sep_token", "[SEP]"),
            mask: try lookup("mask_token", "[MASK]")
        )
    }
}
