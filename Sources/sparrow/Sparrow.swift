import ArgumentParser

@main
struct Sparrow: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sparrow",
        abstract: "Sparrow: a sharded index cluster for inference-free learned sparse retrieval.",
        subcommands: [EncodeCommand.self, EncodeQueryCommand.self, IDFCommand.self, ShardCommand.self, BenchCommand.self]
    )
}
