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

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    #[test]
    fn chunked_attention_equals_one_pass() {
        let dev = Device::Cpu;
        let q = Tensor::randn(0f32, 1.0, (2, 37, 8), &dev).unwrap();
        let k = Tensor::randn(0f32, 1.0, (2, 37, 8), &dev).unwrap();
        let v = Tensor::randn(0f32, 1.0, (2, 37, 8), &dev).unwrap();
        let mask: Vec<f32> = (0..37 * 37)
            .map(|i| {
                if i % 37 > i / 37 {
                    f32::NEG_INFINITY
                } else {
                    0.0
                }
            })
            .collect();
        let mask = Tensor::from_vec(mask, (37, 37), &dev).unwrap();
        let one = attend(&q, &k, &v, 0.3, Some(&mask), usize::MAX).unwrap();
        let chunked = attend(&q, &k, &v, 0.3, Some(&mask), 2 * 37 * 5).unwrap();
        let diff = (one - chunked)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff < 1e-6, "{diff}");
    }
}
