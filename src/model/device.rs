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
            if cfg!(feature = "cuda")
                && let Ok(c) = cuda(0)
            {
                return Ok(c);
            }
            if cfg!(feature = "metal")
                && let Ok(c) = metal(0)
            {
                return Ok(c);
            }
            let why = if cfg!(any(feature = "cuda", feature = "metal")) {
                "the CPU: no usable GPU was found"
            } else {
                "the CPU: this build has no GPU support (build with --features cuda or metal)"
            };
            Ok(cpu(why))
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
    Device::new_cuda(i)
        .map(|device| Chosen {
            device,
            message: format!("CUDA GPU {i}"),
        })
        .map_err(|e| format!("CUDA GPU {i} cannot be used: {e}"))
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
