/// The one order of hits across Sparrow: a higher score first, then the external id in UTF-8
/// byte order. A shard's segments (its bulk-loaded main index and the writes since), the
/// coordinator's merge of shards and the brute-force references all rank by it, so a top k does
/// not depend on how documents were split into shards or segments. (Within a bulk-loaded index
/// internal ids follow external ids, so `ScoredDoc.ranksBefore` agrees with it there.)
public enum HitOrder {
    @inline(__always)
    public static func precedes<Score: Comparable>(_ a: Score, _ idA: String, _ b: Score, _ idB: String) -> Bool {
        a != b ? a > b : idA.utf8.lexicographicallyPrecedes(idB.utf8)
    }
}
