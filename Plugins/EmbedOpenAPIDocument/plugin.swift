import PackagePlugin

/// Builds the target's `openapi.yaml` into it as `OpenAPIDocument.yaml`, a string, so that the
/// server serves the very document it is generated from (`/v1/openapi.json`), with no file
/// beside the binary.
@main struct EmbedOpenAPIDocument: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: any Target) throws -> [Command] {
        guard let source = target.sourceModule,
            let document = source.sourceFiles.first(where: { $0.url.lastPathComponent == "openapi.yaml" })
        else { return [] }
        let output = context.pluginWorkDirectoryURL.appending(path: "OpenAPIDocument.swift")
        return [
            .buildCommand(
                displayName: "Embedding \(document.url.lastPathComponent) in \(target.name)",
                executable: try context.tool(named: "embed-text").url,
                arguments: [document.url.path(), output.path(), "OpenAPIDocument", "yaml"],
                inputFiles: [document.url], outputFiles: [output])
        ]
    }
}
