import CBLAS
import Foundation

/// Row-major float kernels for the transformer forward pass; matrix products go to
/// OpenBLAS `cblas_sgemm`. Callers own the buffers; nothing here allocates.
enum Kernels {
    /// Keeps OpenBLAS to one thread per call: Sparrow parallelises across batches instead,
    /// which scales better for the small matrices of a sparse encoder.
    static func useSingleThreadedBLAS() {
        openblas_set_num_threads(1)
    }

    /// `C[m×n] = alpha · A[m×k] · B[n×k]ᵀ + beta · C`, all row-major with leading dimensions.
    static func gemmTransposedB(
        m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(k),
                    alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// `C[m×n] = A[m×k] · B[k×n]`, row-major with leading dimensions.
    static func gemm(
        m: Int, n: Int, k: Int,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k),
                    1, a, Int32(lda), b, Int32(ldb), 0, c, Int32(ldc))
    }

    /// `out[rows × out] = x[rows × in] · Wᵀ + b`.
    static func linear(_ layer: Linear, rows: Int, x: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>) {
        layer.weight.withUnsafeBufferPointer { w in
            gemmTransposedB(m: rows, n: layer.outFeatures, k: layer.inFeatures,
                            a: x, lda: layer.inFeatures, b: w.baseAddress!, ldb: layer.inFeatures,
                            c: out, ldc: layer.outFeatures)
        }
        layer.bias.withUnsafeBufferPointer { bias in
            for row in 0..<rows {
                let line = out + row * layer.outFeatures
                for j in 0..<layer.outFeatures { line[j] += bias[j] }
            }
        }
    }

    /// In place: `x[r] = LayerNorm(x[r] + residual[r])` for every row of width `width`.
    static func addAndNormalize(
        _ x: UnsafeMutablePointer<Float>, residual: UnsafePointer<Float>?, rows: Int, width: Int, norm: LayerNormWeights
    ) {
        norm.gamma.withUnsafeBufferPointer { gamma in
            norm.beta.withUnsafeBufferPointer { beta in
                for row in 0..<rows {
                    let line = x + row * width
                    if let residual {
                        let other = residual + row * width
                        for j in 0..<width { line[j] += other[j] }
                    }
                    var mean: Float = 0
                    for j in 0..<width { mean += line[j] }
                    mean /= Float(width)
                    var variance: Float = 0
                    for j in 0..<width {
                        let d = line[j] - mean
                        variance += d * d
                    }
                    variance /= Float(width)
                    let scale = 1 / (variance + norm.eps).squareRoot()
                    for j in 0..<width { line[j] = (line[j] - mean) * scale * gamma[j] + beta[j] }
                }
            }
        }
    }

    /// In place: exact GELU, `0.5 · x · (1 + erf(x / √2))`.
    static func gelu(_ x: UnsafeMutablePointer<Float>, count: Int) {
        let invSqrt2: Float = 0.70710678118654752
        for i in 0..<count {
            let v = x[i]
            x[i] = 0.5 * v * (1 + erff(v * invSqrt2))
        }
    }

    /// In place: numerically stable softmax of each row.
    static func softmaxRows(_ x: UnsafeMutablePointer<Float>, rows: Int, width: Int) {
        for row in 0..<rows {
            let line = x + row * width
            var peak = -Float.infinity
            for j in 0..<width { peak = max(peak, line[j]) }
            var sum: Float = 0
            for j in 0..<width {
                let e = expf(line[j] - peak)
                line[j] = e
                sum += e
            }
            let inverse = 1 / sum
            for j in 0..<width { line[j] *= inverse }
        }
    }

    /// `into[j] = max(into[j], rows[r][j])` over `rowCount` rows of width `width` (stride `stride`).
    static func columnMax(
        _ rows: UnsafePointer<Float>, rowCount: Int, width: Int, stride: Int, into: UnsafeMutablePointer<Float>
    ) {
        for row in 0..<rowCount {
            let line = rows + row * stride
            for j in 0..<width {
                let candidate = line[j]
                let current = into[j]
                into[j] = candidate > current ? candidate : current
            }
        }
    }
}
