//! Scaled dot-product attention computed a chunk of query rows at a time, so the score matrix
//! held at once stays under a budget (a 2048x2048 image's full-attention block would otherwise
//! hold 16 x 21316^2 scores).

use candle_core::Tensor;

use crate::model::Result;

/// `softmax(q k^T * scale + mask) v` for q [heads, lq, d] and k, v [heads, lk, d] (f32), with an
/// optional additive mask [lq, lk]; at most about `budget` scores exist at once.
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
        let mut scores = (qc.matmul(&kt)? * scale)?;
        if let Some(m) = mask {
            scores = scores.broadcast_add(&m.narrow(0, start, n)?)?;
        }
        let p = candle_nn::ops::softmax_last_dim(&scores)?;
        parts.push(p.matmul(v)?);
        start += n;
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
        let mut scores = (qc.matmul(&kt)? * scale)?.reshape((kv_heads, rep, n, lk))?;
        if let Some(m) = mask {
            scores = scores.broadcast_add(&m.narrow(0, start, n)?)?;
        }
        let p = candle_nn::ops::softmax_last_dim(&scores)?.reshape((kv_heads, rep * n, lk))?;
        parts.push(p.matmul(v)?.reshape((kv_heads, rep, n, d))?);
        start += n;
    }
    Ok(Tensor::cat(&parts, 2)?.reshape((heads, lq, d))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

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
