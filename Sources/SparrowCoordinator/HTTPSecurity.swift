import Hummingbird
import SparrowSecurity
import SparrowWire

/// API keys on HTTP: `Authorization: Bearer <key>` (or `X-API-Key: <key>`). Every route but
/// `/healthz`, the console's page `/` (static: its calls to the API carry the key) and the API's
/// description `/v1/openapi.json` needs a key of scope `read`; a missing or bad key gets 401
/// `unauthenticated`, a key without the scope 403 `permission_denied`.
struct APIKeyMiddleware<Context: RequestContext>: RouterMiddleware {
    let keys: APIKeyVerifier
    static var openPaths: Set<String> { ["/healthz", "/", "/v1/openapi.json"] }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard !Self.openPaths.contains(request.uri.path) else { return try await next(request, context) }
        let presented = Self.presentedKey(request.headers)
        let key: Result<AuthenticatedKey, SecurityError>? = presented.map { keys.authenticate($0) }
        let rule = AccessPolicy.Rule(roles: [], scope: .read, audited: false)
        switch AccessPolicy(rules: [:], otherwise: rule).admit("HTTP \(request.uri.path)", certificate: nil, key: key) {
        case .success:
            return try await next(request, context)
        case .failure(let refusal):
            var response = HTTPAPI.errorResponse(refusal)
            if refusal.code == .unauthenticated { response.headers[.wwwAuthenticate] = "Bearer realm=\"sparrow\"" }
            return response
        }
    }

    static func presentedKey(_ headers: HTTPFields) -> String? {
        if let authorization = headers[.authorization], authorization.hasPrefix("Bearer ") {
            return String(authorization.dropFirst("Bearer ".count)).trimmingCharacters(in: .whitespaces)
        }
        return headers.first { $0.name.canonicalName == "x-api-key" }?.value
    }
}
