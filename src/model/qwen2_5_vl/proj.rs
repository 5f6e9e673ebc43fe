//! A projection matrix (a linear layer) of either tower: dense, or quantized (Q8_0/Q4K from
//! `thyme-studio model quantize`, computed in f32 whatever the tower's dtype). A quantized
//! matrix may be stored with zero columns and rows added (`quantize::q8_padding`: the vision
//! MLP's 3420 inputs become 3584, its 3420 outputs 3424); the input gets the same zero
//! columns and the output is cut back, so the product is the unpadded one.

use std::collections::HashMap;

use candle_core::quantized::{QMatMul, QTensor};
use candle_core::{D, DType, Module, Tensor};
use candle_nn::{Linear, VarBuilder};

use crate::model::{ModelError, Result};

/// A linear layer.
pub enum Proj {
    Dense(Linear),
    Quant {
        matrix: QMatMul,
        /// In f32.
        bias: Option<Tensor>,
        /// Zero columns the stored matrix has beyond the layer's inputs.
        pad: usize,
        /// The layer's outputs (the stored matrix may have zero rows beyond them).
        out: usize,
    },
}

impl Proj {
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Proj::Dense(l) => l.forward(x),
            Proj::Quant {
                matrix,
                bias,
                pad,
                out,
            } => {
                let dtype = x.dtype();
                let mut x = x.to_dtype(DType::F32)?;
                if *pad > 0 {
                    x = x.pad_with_zeros(D::Minus1, 0, *pad)?;
                }
                let mut y = matrix.forward(&x.contiguous()?)?;
                if y.dim(D::Minus1)? != *out {
                    y = y.narrow(D::Minus1, 0, *out)?;
                }
                let y = match bias {
                    Some(b) => y.broadcast_add(b)?,
                    None => y,
                };
                y.to_dtype(dtype)
            }
        }
    }

    /// The quantized matrix `key` taken from `projections`, `[out, inp]` (or `inp` padded to
    /// less than a block more), with its bias from `vb` when `bias`.
    pub fn quantized(
        projections: &mut HashMap<String, QTensor>,
        key: &str,
        vb: &VarBuilder,
        inp: usize,
        out: usize,
        bias: bool,
    ) -> Result<Option<Self>> {
        let Some(q) = projections.remove(key) else {
            return Ok(None);
        };
        let dims = q.shape().dims().to_vec();
        // Padded by `quantize::q8_padding` at most: under 256 columns and 8 rows more.
        let fits = dims.len() == 2
            && dims[0] >= out
            && dims[0] - out < 8
            && dims[1] >= inp
            && dims[1] - inp < 256;
        if !fits {
            return Err(ModelError::Config(format!(
                "{key} is {dims:?}, expected [{out}, {inp}]"
            )));
        }
        let bias = if bias {
            Some(vb.get(out, "bias")?.to_dtype(DType::F32)?)
        } else {
            None
        };
        Ok(Some(Proj::Quant {
            pad: dims[1] - inp,
            out,
            matrix: QMatMul::from_qtensor(q)?,
            bias,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use candle_core::quantized::GgmlDType;

    /// A 40-input, 48-output layer stored in Q8_0 as 64 columns and 51 rows (the rest zeros)
    /// gives the dense layer's output within Q8_0's rounding, in f32 and from a bf16 input.
    #[test]
    fn a_padded_quantized_matrix_gives_the_dense_product() {
        let dev = Device::Cpu;
        let w = Tensor::randn(0f32, 1.0, (48, 40), &dev).unwrap();
        let b = Tensor::randn(0f32, 1.0, 48, &dev).unwrap();
        let x = Tensor::randn(0f32, 1.0, (5, 40), &dev).unwrap();
        let dense = Proj::Dense(Linear::new(w.clone(), Some(b.clone())));
        // 24 zero columns and 3 zero rows, as `q8_padding` adds to large matrices.
        let padded = w
            .pad_with_zeros(1, 0, 24)
            .unwrap()
            .pad_with_zeros(0, 0, 3)
            .unwrap();
        let mut map = HashMap::from([(
            "m.weight".to_owned(),
            QTensor::quantize(&padded, GgmlDType::Q8_0).unwrap(),
        )]);
        let vb =
            VarBuilder::from_tensors(HashMap::from([("bias".to_owned(), b)]), DType::F32, &dev);
        let q = Proj::quantized(&mut map, "m.weight", &vb, 40, 48, true)
            .unwrap()
            .unwrap();
        let (a, c) = (dense.forward(&x).unwrap(), q.forward(&x).unwrap());
        assert_eq!(a.dims(), c.dims());
        // Q8_0 rounds the weights and (on the CPU) the input to 8 bits a block: a few percent
        // of the output's scale; a missing or misplaced pad would be the whole scale.
        let scale = a
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let err = (a - c).unwrap().abs().unwrap().max_all().unwrap();
        let err = err.to_scalar::<f32>().unwrap();
        assert!(err < 0.05 * scale, "{err} of {scale}");
        let half = q.forward(&x.to_dtype(DType::BF16).unwrap()).unwrap();
        assert_eq!(half.dtype(), DType::BF16);
        // Absent: None (the caller loads it dense); the wrong shape: an error naming it.
        assert!(
            Proj::quantized(&mut map, "m.weight", &vb, 40, 48, true)
                .unwrap()
                .is_none()
        );
        map.insert(
            "n.weight".to_owned(),
            QTensor::quantize(&padded, GgmlDType::Q8_0).unwrap(),
        );
        let e = Proj::quantized(&mut map, "n.weight", &vb, 40, 40, true)
            .err()
            .unwrap();
        assert!(e.to_string().contains("n.weight"), "{e}");
    }
}
