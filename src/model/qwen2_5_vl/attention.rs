//! Scaled dot-product attention computed a chunk of query rows at a time, so the score matrix
//! held at once stays under a budget (a 2048x2048 image's full-attention block would otherwise
//! hold 16 x 21316^2 scores). The two products run in the inputs' dtype (f32 on the CPU, bf16 or
//! f16 on a GPU, where cuBLAS accumulates in f32); scaling, the mask and the softmax are always
//! f32, as the reference's fused kernels do.

use candle_core::{DType, Device, Tensor};

use crate::model::Result;

/// The dtype attention's products run in: f32 on the CPU (candle's CPU kernels are fastest and
/// exact there), the working dtype on a GPU.
pub fn product_dtype(device: &Device, working: DType) -> DType {
    if device.is_cpu() { DType::F32 } else { working }
}

/// `softmax(scores * scale + mask)` in f32, handed back in `dtype`.
fn probabilities(scores: Tensor, scale: f64, mask: Option<Tensor>, dtype: DType) -> Result<Tensor> {
    let mut s = (scores.to_dtype(DType::F32)? * scale)?;
    if let Some(m) = mask {
        s = s.broadcast_add(&m)?;
    }
    Ok(candle_nn::ops::softmax_last_dim(&s)?.to_dtype(dtype)?)
}

/// `softmax(q k^T * scale + mask) v` for q [batch, lq, d] and k, v [batch, lk, d] (the batch is
/// heads, or windows x heads), with an optional additive f32 mask [lq, lk]; at most about
/// `budget` scores exist at once.
pub fn attend(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    scale: f64,
    mask: Option<&Tensor>,
    budget: usize,
) -> Result<Tensor> {
    let (heads, lq, _) = q.dims3()?;
    let lk = k.dim(1)?;
    let chunk = (budget / (heads * lk).max(1)).clamp(1, lq.max(1));
    let kt = k.t()?;
    let mut parts = Vec::with_capacity(lq.div_ceil(chunk));
    let mut start = 0;
    while start < lq {
        let n = chunk.min(lq - start);
        let qc = q.narrow(1, start, n)?.contiguous()?;
        let m = mask.map(|m| m.narrow(0, start, n)).transpose()?;
        let p = probabilities(qc.matmul(&kt)?, scale, m, v.dtype())?;
        parts.push(p.matmul(v)?);
        start += n;
    }
    if parts.len() == 1 {
        return Ok(parts.remove(0));
    }
    Ok(Tensor::cat(&parts, 1)?)
}

/// Grouped-query attention without copying keys and values per head: q [heads, lq, d], k and v
/// [kv_heads, lk, d] (heads a multiple of kv_heads; head h reads kv head h / (heads / kv_heads)),
/// mask [lq, lk]; chunked over query positions under the same score budget.
pub fn attend_grouped(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    scale: f64,
    mask: Option<&Tensor>,
    budget: usize,
) -> Result<Tensor> {
    let (heads, lq, d) = q.dims3()?;
    let (kv_heads, lk, _) = k.dims3()?;
    let rep = heads / kv_heads.max(1);
    if rep <= 1 {
        return attend(q, k, v, scale, mask, budget);
    }
    let q = q.reshape((kv_heads, rep, lq, d))?;
    let kt = k.t()?;
    let chunk = (budget / (heads * lk).max(1)).clamp(1, lq.max(1));
    let mut parts = Vec::with_capacity(lq.div_ceil(chunk));
    let mut start = 0;
    while start < lq {
        let n = chunk.min(lq - start);
        let qc = q
            .narrow(2, start, n)?
            .contiguous()?
            .reshape((kv_heads, rep * n, d))?;
        let scores = qc.matmul(&kt)?.reshape((kv_heads, rep, n, lk))?;
        let m = mask.map(|m| m.narrow(0, start, n)).transpose()?;
        let p = probabilities(scores, scale, m, v.dtype())?.reshape((kv_heads, rep * n, lk))?;
        parts.push(p.matmul(v)?.reshape((kv_heads, rep, n, d))?);
        start += n;
    }
    let out = if parts.len() == 1 {
        parts.remove(0)
    } else {
        Tensor::cat(&parts, 2)?
    };
    Ok(out.reshape((heads, lq, d))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn causal(n: usize) -> Tensor {
        let m: Vec<f32> = (0..n * n)
            .map(|i| {
                if i % n > i / n {
                    f32::NEG_INFINITY
                } else {
                    0.0
                }
            })
            .collect();
        Tensor::from_vec(m, (n, n), &Device::Cpu).unwrap()
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    #[test]
    fn chunked_attention_equals_one_pass() {
        let dev = Device::Cpu;
        let q = Tensor::randn(0f32, 1.0, (2, 37, 8), &dev).unwrap();
        let k = Tensor::randn(0f32, 1.0, (2, 37, 8), &dev).unwrap();
        let v = Tensor::randn(0f32, 1.0, (2, 37, 8), &dev).unwrap();
        let mask = causal(37);
        let one = attend(&q, &k, &v, 0.3, Some(&mask), usize::MAX).unwrap();
        let chunked = attend(&q, &k, &v, 0.3, Some(&mask), 2 * 37 * 5).unwrap();
        let diff = max_diff(&one, &chunked);
        assert!(diff < 1e-6, "{diff}");
    }

    #[test]
    fn half_precision_products_keep_the_softmax_in_f32_and_stay_close() {
        // A GPU runs the products in bf16/f16; f16 runs on the CPU too, so the path is
        // checked here: the same attention within f16's precision, masked rows still zero.
        let dev = Device::Cpu;
        let q = Tensor::randn(0f32, 1.0, (4, 19, 16), &dev).unwrap();
        let k = Tensor::randn(0f32, 1.0, (2, 19, 16), &dev).unwrap();
        let v = Tensor::randn(0f32, 1.0, (2, 19, 16), &dev).unwrap();
        let mask = causal(19);
        let want = attend_grouped(&q, &k, &v, 0.25, Some(&mask), usize::MAX).unwrap();
        let half = |t: &Tensor| t.to_dtype(DType::F16).unwrap();
        let got = attend_grouped(
            &half(&q),
            &half(&k),
            &half(&v),
            0.25,
            Some(&mask),
            4 * 19 * 5,
        )
        .unwrap();
        assert_eq!(got.dtype(), DType::F16);
        let diff = max_diff(&got.to_dtype(DType::F32).unwrap(), &want);
        assert!(diff < 1e-2, "{diff}");
        assert_eq!(product_dtype(&dev, DType::BF16), DType::F32);
    }

    #[test]
    fn grouped_attention_equals_repeated_keys() {
        let dev = Device::Cpu;
        let q = Tensor::randn(0f32, 1.0, (8, 11, 4), &dev).unwrap();
        let k = Tensor::randn(0f32, 1.0, (2, 11, 4), &dev).unwrap();
        let v = Tensor::randn(0f32, 1.0, (2, 11, 4), &dev).unwrap();
        let mask = causal(11);
        let rep = |t: &Tensor| {
            t.unsqueeze(1)
                .unwrap()
                .expand((2, 4, 11, 4))
                .unwrap()
                .reshape((8, 11, 4))
                .unwrap()
        };
        let want = attend(&q, &rep(&k), &rep(&v), 0.5, Some(&mask), usize::MAX).unwrap();
        for budget in [usize::MAX, 8 * 11 * 3] {
            let got = attend_grouped(&q, &k, &v, 0.5, Some(&mask), budget).unwrap();
            let diff = max_diff(&got, &want);
            assert!(diff < 1e-6, "{diff}");
        }
    }
}
