import ArgumentParser

@main
struct Sparrow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sparrow",
        abstract: "Sparrow: a sharded index cluster for inference-free learned sparse retrieval.",
        subcommands: [
            EncodeCommand.self, EncodeQueryCommand.self, IDFCommand.self, BuildCommand.self, ShardCommand.self, CoordinatorCommand.self,
            QueryCommand.self, WriteCommand.self, EvalCommand.self, LocalCommand.self, CtlCommand.self, BenchCommand.self, CertsCommand.self,
            KeysCommand.self,
        ]
    )
}
