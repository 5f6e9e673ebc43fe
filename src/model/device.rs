//! Which device a model runs on, chosen at run time: CUDA or Metal when this build has the
//! feature and the machine has the hardware, else the CPU, with a sentence saying why; and the
//! working dtype for it (candle's CPU matmul has no bf16, so bf16 weights are converted).

use candle_core::{DType, Device};

/// What the person asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DevicePreference {
    /// The best this build and machine have.
    #[default]
    Auto,
    Cpu,
    Cuda(usize),
    Metal(usize),
}

impl DevicePreference {
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_lowercase();
        let index = |rest: &str| -> Option<usize> {
            if rest.is_empty() {
                Some(0)
            } else {
                rest.strip_prefix(':')?.parse().ok()
            }
        };
        match s.as_str() {
            "auto" => Some(Self::Auto),
            "cpu" => Some(Self::Cpu),
            _ => {
                if let Some(rest) = s.strip_prefix("cuda") {
                    index(rest).map(Self::Cuda)
                } else if let Some(rest) = s.strip_prefix("metal") {
                    index(rest).map(Self::Metal)
                } else {
                    None
                }
            }
        }
    }
}

/// The device chosen, and why (shown to the person).
pub struct Chosen {
    pub device: Device,
    pub message: String,
}

/// Pick a device. Asking for CUDA or Metal in a build without that feature, or on a machine
/// without the hardware, is an error that says so, not a silent fall back to the CPU.
pub fn choose(pref: DevicePreference) -> Result<Chosen, String> {
    match pref {
        DevicePreference::Cpu => Ok(cpu("the CPU, as asked")),
        DevicePreference::Cuda(i) => cuda(i),
        DevicePreference::Metal(i) => metal(i),
        DevicePreference::Auto => {
            let mut why = "the CPU: this build has no GPU support (build with --features cuda or \
                           metal)"
                .to_string();
            if cfg!(feature = "cuda") {
                match cuda(0) {
                    Ok(c) => return Ok(c),
                    Err(e) => why = format!("the CPU, falling back: {e}"),
                }
            }
            if cfg!(feature = "metal") {
                match metal(0) {
                    Ok(c) => return Ok(c),
                    Err(e) => why = format!("the CPU, falling back: {e}"),
                }
            }
            Ok(cpu(&why))
        }
    }
}

fn cpu(why: &str) -> Chosen {
    Chosen {
        device: Device::Cpu,
        message: format!(
            "{why} ({} threads)",
            std::thread::available_parallelism().map_or(1, |n| n.get())
        ),
    }
}

fn cuda(i: usize) -> Result<Chosen, String> {
    if !cfg!(feature = "cuda") {
        return Err("this build has no CUDA support: rebuild with --features cuda".into());
    }
    let device = Device::new_cuda(i).map_err(|e| format!("CUDA GPU {i} cannot be used: {e}"))?;
    // A driver older than the toolkit this build was compiled with accepts the context but not
    // the kernels: run one of each kind now, so the failure is named here and not mid-model.
    probe(&device).map_err(|e| {
        format!("CUDA GPU {i} cannot run this build's kernels (is the driver older than CUDA 13.0?): {e}")
    })?;
    Ok(Chosen {
        device,
        message: format!("CUDA GPU {i}"),
    })
}

/// One elementwise kernel, one reduction and one matrix product on `device`, checked.
fn probe(device: &Device) -> candle_core::Result<()> {
    let a = candle_core::Tensor::arange(0f32, 4.0, device)?.reshape((2, 2))?;
    let b = (a.matmul(&a)?.affine(1.0, 1.0)?)
        .sum_all()?
        .to_scalar::<f32>()?;
    // [[0,1],[2,3]]^2 = [[2,3],[6,11]]: 22, plus 1 per element.
    if b == 26.0 {
        Ok(())
    } else {
        Err(candle_core::Error::Msg(format!(
            "a 2x2 product gave {b}, not 26"
        )))
    }
}

fn metal(i: usize) -> Result<Chosen, String> {
    if !cfg!(feature = "metal") {
        return Err("this build has no Metal support: rebuild with --features metal".into());
    }
    Device::new_metal(i)
        .map(|device| Chosen {
            device,
            message: format!("Metal GPU {i}"),
        })
        .map_err(|e| format!("Metal GPU {i} cannot be used: {e}"))
}

/// The dtype to compute in: what was asked if the device can do it, else f32, with a note
/// (bf16 on the CPU becomes f32: candle's CPU matmul has no bf16).
pub fn working_dtype(asked: DType, device: &Device) -> (DType, Option<String>) {
    match (asked, device) {
        (DType::BF16, Device::Cpu) => (
            DType::F32,
            Some(
                "bf16 weights are converted to f32 on the CPU (candle's CPU matmul has no bf16)"
                    .into(),
            ),
        ),
        (DType::F32 | DType::F16 | DType::BF16, _) => (asked, None),
        (other, _) => (
            DType::F32,
            Some(format!("{other:?} is not a compute dtype; using f32")),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_parse_and_the_cpu_is_always_there() {
        assert_eq!(
            DevicePreference::parse("cuda:1"),
            Some(DevicePreference::Cuda(1))
        );
        assert_eq!(
            DevicePreference::parse("Metal"),
            Some(DevicePreference::Metal(0))
        );
        assert_eq!(DevicePreference::parse("tpu"), None);
        assert!(choose(DevicePreference::Auto).is_ok());
        if !cfg!(feature = "cuda") {
            let e = choose(DevicePreference::Cuda(0)).err().unwrap();
            assert!(e.contains("--features cuda"), "{e}");
        }
        let (d, note) = working_dtype(DType::BF16, &Device::Cpu);
        assert_eq!(d, DType::F32);
        assert!(note.unwrap().contains("bf16"));
    }
}
