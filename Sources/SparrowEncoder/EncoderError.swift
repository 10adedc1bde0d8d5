/// Everything that can go wrong while loading or running a sparse encoder.
/// Each case names the file, tensor, line or field at fault so the user can fix the cause.
public enum EncoderError: Error, Equatable, CustomStringConvertible {
    /// A file the model folder must contain is missing or unreadable.
    case missingFile(path: String, reason: String)
    /// A JSON file is not valid or lacks a field.
    case invalidJSON(path: String, reason: String)
    /// `config.json` names an architecture Sparrow does not implement.
    case unsupportedArchitecture(path: String, found: String)
    /// A safetensors file is malformed (bad header, truncated data, overlapping ranges).
    case invalidSafetensors(path: String, reason: String)
    /// A tensor the architecture needs is absent.
    case missingTensor(path: String, name: String)
    /// A tensor has a shape other than the configuration implies.
    case tensorShape(path: String, name: String, expected: [Int], found: [Int])
    /// A tensor has a dtype Sparrow cannot read.
    case tensorDType(path: String, name: String, found: String)
    /// The tokenizer definition is unusable.
    case invalidTokenizer(path: String, reason: String)
    /// A pruning or activation specification could not be parsed.
    case invalidOption(option: String, value: String, expected: String)

    /// A stable machine-readable code for the error kind.
    public var code: String {
        switch self {
        case .missingFile: "encoder.missing_file"
        case .invalidJSON: "encoder.invalid_json"
        case .unsupportedArchitecture: "encoder.unsupported_architecture"
        case .invalidSafetensors: "encoder.invalid_safetensors"
        case .missingTensor: "encoder.missing_tensor"
        case .tensorShape: "encoder.tensor_shape"
        case .tensorDType: "encoder.tensor_dtype"
        case .invalidTokenizer: "encoder.invalid_tokenizer"
        case .invalidOption: "encoder.invalid_option"
        }
    }

    public var description: String {
        switch self {
        case let .missingFile(path, reason):
            "\(path): cannot read model file (\(reason))"
        case let .invalidJSON(path, reason):
            "\(path): invalid JSON: \(reason)"
        case let .unsupportedArchitecture(path, found):
            "\(path): unsupported architecture '\(found)'; expected BertForMaskedLM or DistilBertForMaskedLM"
        case let .invalidSafetensors(path, reason):
            "\(path): invalid safetensors file: \(reason)"
        case let .missingTensor(path, name):
            "\(path): tensor '\(name)' is missing"
        case let .tensorShape(path, name, expected, found):
            "\(path): tensor '\(name)' has shape \(found), expected \(expected) from config.json"
        case let .tensorDType(path, name, found):
            "\(path): tensor '\(name)' has dtype \(found); supported: F32, F16, BF16"
        case let .invalidTokenizer(path, reason):
            "\(path): invalid tokenizer: \(reason)"
        case let .invalidOption(option, value, expected):
            "invalid \(option) '\(value)': expected \(expected)"
        }
    }
}
