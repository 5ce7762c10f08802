//! Where models run: `--device cpu | cuda | cuda:N | auto`.
//!
//! `auto` (the default) is the first CUDA GPU when gym was built with the
//! `cuda` feature and a GPU answers, else the CPU. On a GPU the frozen base
//! weights are bf16 ([`default_dtype`]); LoRA adapters, optimizer state and
//! log-softmax stay f32 wherever the model runs.

use candle_core::{DType, Device};

use crate::error::{ModelError, Result};

/// The device specs [`parse_device`] accepts.
pub const DEVICE_SPECS: [&str; 4] = ["auto", "cpu", "cuda", "cuda:N"];

/// Whether this build can use NVIDIA GPUs (the `cuda` cargo feature).
pub fn cuda_compiled() -> bool {
    cfg!(feature = "cuda")
}

/// The default device: `cuda:0` when built with `cuda` and a GPU answers,
/// else the CPU.
pub fn default_device() -> Device {
    if cuda_compiled() {
        if let Ok(d) = Device::new_cuda(0) {
            return d;
        }
    }
    Device::Cpu
}

/// Parses a device spec (see [`DEVICE_SPECS`]).
pub fn parse_device(spec: &str) -> Result<Device> {
    let spec = spec.trim();
    let ordinal = match spec {
        "auto" | "" => return Ok(default_device()),
        "cpu" => return Ok(Device::Cpu),
        "cuda" | "gpu" => 0,
        s => match s.strip_prefix("cuda:").and_then(|n| n.parse::<usize>().ok()) {
            Some(n) => n,
            None => {
                return Err(ModelError::Device(format!(
                    "unknown device `{spec}`; expected one of {}",
                    DEVICE_SPECS.join(", ")
                )))
            }
        },
    };
    if !cuda_compiled() {
        return Err(ModelError::Device(format!(
            "device `{spec}`: this gym was built without the `cuda` feature; build it with \
             `scripts/build_cuda.sh` (or `cargo build --release -p gym --features cuda`) or use --device cpu"
        )));
    }
    Device::new_cuda(ordinal)
        .map_err(|e| ModelError::Device(format!("device `{spec}`: cannot open CUDA GPU {ordinal}: {e}")))
}

/// The dtype for frozen base weights on `device`: bf16 on GPUs, f32 on CPUs.
pub fn default_dtype(device: &Device) -> DType {
    if device.is_cpu() {
        DType::F32
    } else {
        DType::BF16
    }
}

/// A short name for logs and metrics (`cpu`, `cuda:0`).
pub fn device_name(device: &Device) -> String {
    match device.location() {
        candle_core::DeviceLocation::Cpu => "cpu".into(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}

/// GPU memory in use on `device`'s card (whole card, every process), in
/// bytes, after waiting for queued work; `None` on the CPU.
pub fn gpu_memory_used(device: &Device) -> Option<u64> {
    #[cfg(feature = "cuda")]
    if device.is_cuda() {
        device.synchronize().ok()?;
        let (free, total) = candle_core::cuda_backend::cudarc::driver::result::mem_get_info().ok()?;
        return Some((total - free) as u64);
    }
    let _ = device;
    None
}

/// With `GYM_MEM_TRACE=1`, prints `label` and the GPU memory in use to
/// stderr (a diagnostic for memory peaks; synchronises the device). The
/// label is formatted only when tracing is on.
pub fn mem_trace(device: &Device, label: std::fmt::Arguments<'_>) {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os("GYM_MEM_TRACE").is_some()) {
        if let Some(b) = gpu_memory_used(device) {
            eprintln!("mem {label}: {} MiB", b >> 20);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_parses_and_unknown_names_list_the_valid_ones() {
        assert!(parse_device("cpu").unwrap().is_cpu());
        let e = parse_device("tpu").unwrap_err().to_string();
        assert!(e.contains("unknown device `tpu`") && e.contains("cuda:N"), "{e}");
        assert_eq!(default_dtype(&Device::Cpu), DType::F32);
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_says_how_to_build_it() {
        let e = parse_device("cuda:1").unwrap_err().to_string();
        assert!(e.contains("without the `cuda` feature") && e.contains("build_cuda.sh"), "{e}");
        assert!(default_device().is_cpu());
    }
}

/// Hidden sizes up to this count as *small* for [`cpu_threads_for`].
pub const SMALL_HIDDEN: usize = 256;
/// CPU threads a small model's ops use by default.
pub const SMALL_MODEL_THREADS: usize = 1;

/// How many CPU threads candle's ops should use for a model of
/// `hidden_size` on a machine with `cores` cores.
///
/// A small model's matrices (hidden ≤ [`SMALL_HIDDEN`]) take microseconds
/// per op, about what handing them to other threads costs, and a thread
/// that waits for a busy core stalls every op. Measured on the toy GRPO
/// step (BENCHMARKS.md): on an idle 16-core CPU 1 thread is as fast as 4
/// and faster than 16 (0.048–0.060 s, 0.057 s, 0.072 s); on 2 cores shared
/// with another job, 1 thread took 0.058 s and 2 threads 0.42 s. Larger
/// models use every core. Parallel rollouts (`--rollout-threads`) still
/// use several cores for a small model.
pub fn cpu_threads_for(hidden_size: usize, cores: usize) -> usize {
    let cores = cores.max(1);
    if hidden_size <= SMALL_HIDDEN {
        cores.min(SMALL_MODEL_THREADS)
    } else {
        cores
    }
}

/// Caps candle's CPU threads for a model of `hidden_size` (see
/// [`cpu_threads_for`]) unless `RAYON_NUM_THREADS` is set or `device` is
/// not the CPU. Call it before any tensor work, while the process has one
/// thread: it sets `RAYON_NUM_THREADS`, which candle reads on every op and
/// rayon when its pool starts.
pub fn cap_cpu_threads(hidden_size: usize, device: &Device) {
    if !device.is_cpu() || std::env::var_os("RAYON_NUM_THREADS").is_some() {
        return;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let n = cpu_threads_for(hidden_size, cores);
    if n < cores {
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    }
}

#[cfg(test)]
mod thread_tests {
    use super::*;

    #[test]
    fn small_models_use_few_threads_and_large_ones_every_core() {
        assert_eq!(cpu_threads_for(64, 16), 1);
        assert_eq!(cpu_threads_for(128, 2), 1);
        assert_eq!(cpu_threads_for(256, 1), 1);
        assert_eq!(cpu_threads_for(896, 16), 16);
        assert_eq!(cpu_threads_for(64, 0), 1);
    }
}
