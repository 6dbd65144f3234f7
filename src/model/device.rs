//! Device selection from a user string: `cpu` or `cuda:N`.
use candle_core::Device;

use super::ModelError;

/// Parses `cpu`, `cuda` (= `cuda:0`) or `cuda:N` into a candle device. Without the crate's
/// `cuda` feature, or without a usable driver, asking for CUDA is an error that says so.
pub fn parse_device(spec: &str) -> Result<Device, ModelError> {
    let err = |message: String| ModelError::Device {
        spec: spec.to_string(),
        message,
    };
    let ordinal = match spec.trim() {
        "cpu" => return Ok(Device::Cpu),
        "cuda" => 0,
        s => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(n)) => n,
            _ => return Err(err("expected `cpu`, `cuda` or `cuda:N`".into())),
        },
    };
    if !cfg!(feature = "cuda") {
        return Err(err(
            "this zhishi was built without CUDA support; rebuild with `--features cuda`".into(),
        ));
    }
    Device::new_cuda(ordinal).map_err(|e| err(format!("cannot open CUDA device {ordinal}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_is_always_available() {
        assert!(matches!(parse_device("cpu"), Ok(Device::Cpu)));
    }

    #[test]
    fn malformed_specs_are_rejected() {
        let e = parse_device("gpu0").unwrap_err().to_string();
        assert!(e.contains("expected `cpu`, `cuda` or `cuda:N`"), "{e}");
        assert!(parse_device("cuda:x").is_err());
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_says_how_to_get_it() {
        let e = parse_device("cuda:0").unwrap_err().to_string();
        assert!(e.contains("--features cuda"), "{e}");
    }
}
