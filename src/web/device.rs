//! The JS class `Device`: the browser's WebGPU adapter opened with its own limits and the
//! features the kernels use (shader-f16 where offered; wgpu exposes no subgroups on the web).

use super::js::{get, js_error, object, options, JsResult};
use crate::device::{Device, DeviceOptions, DEFAULT_MEMORY_BUDGET};
use crate::error::Error;
use js_sys::{Array, Promise};
use serde::Deserialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::future_to_promise;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateOpts {
    /// Most bytes of buffers the device may hold (default 8 GiB).
    memory_budget: Option<f64>,
    /// Measure kernel variants on first use of a shape class (default true).
    autotune: Option<bool>,
    /// Forced variants per op family, as `WGPU_INFER_MATMUL` & co. natively:
    /// `{ matmul: "tiled" | "reg" | "texture", attention: ..., conv2d: ... }`.
    kernels: Option<std::collections::BTreeMap<String, String>>,
}

/// A WebGPU device.
#[wasm_bindgen(js_name = Device)]
pub struct WebDevice {
    device: Device,
    /// The browser's `GPUAdapterInfo` (vendor, architecture, device, description): wgpu's
    /// adapter info on the web has no name.
    adapter: JsValue,
}

impl WebDevice {
    pub(crate) fn device(&self) -> &Device {
        &self.device
    }
}

/// Whether `globalThis.navigator.gpu` exists (in a window or a worker).
fn has_webgpu() -> JsResult<bool> {
    let nav = get(&js_sys::global(), "navigator")?;
    if nav.is_undefined() || nav.is_null() {
        return Ok(false);
    }
    let gpu = get(&nav, "gpu")?;
    Ok(!gpu.is_undefined() && !gpu.is_null())
}

/// `(await navigator.gpu.requestAdapter()).info` as a plain object, for `info()`.
async fn browser_adapter_info() -> JsResult<JsValue> {
    let gpu = get(&get(&js_sys::global(), "navigator")?, "gpu")?;
    let request: js_sys::Function = get(&gpu, "requestAdapter")?.dyn_into()?;
    let p: Promise = request.call0(&gpu)?.dyn_into()?;
    let adapter = wasm_bindgen_futures::JsFuture::from(p).await?;
    let info = get(&adapter, "info")?;
    let field = |k: &str| {
        get(&info, k)
            .ok()
            .and_then(|v| v.as_string())
            .unwrap_or_default()
    };
    Ok(object(&[
        ("vendor", field("vendor").into()),
        ("architecture", field("architecture").into()),
        ("device", field("device").into()),
        ("description", field("description").into()),
        (
            "isFallbackAdapter",
            get(&adapter, "isFallbackAdapter")?
                .as_bool()
                .unwrap_or(false)
                .into(),
        ),
    ]))
}

#[wasm_bindgen(js_class = Device)]
impl WebDevice {
    /// Opens the browser's WebGPU adapter. Rejects when the browser has no WebGPU
    /// (`navigator.gpu` missing) or offers no adapter. Options: `{ memoryBudget }` (bytes),
    /// `autotune` (default true), `kernels` (forced variants, e.g. `{ matmul: "tiled" }`; an
    /// unknown one fails when a model first runs, as natively).
    #[wasm_bindgen(unchecked_return_type = "Promise<Device>")]
    pub fn create(
        #[wasm_bindgen(
            unchecked_optional_param_type = "{ memoryBudget?: number, autotune?: boolean, kernels?: Record<string, string> }"
        )]
        options: Option<JsValue>,
    ) -> Promise {
        let options = options.unwrap_or(JsValue::UNDEFINED);
        future_to_promise(async move {
            let o: CreateOpts = self::options(&options, "Device.create")?;
            if !has_webgpu()? {
                return Err(js_error(Error::NoAdapter {
                    detail:
                        ": navigator.gpu is missing (no WebGPU in this browser, or the page is \
                             not a secure context)"
                            .into(),
                }));
            }
            let mut opts = DeviceOptions::default();
            if let Some(a) = o.autotune {
                opts.policy.autotune = a;
            }
            opts.policy.force = o.kernels.unwrap_or_default();
            opts.memory_budget = match o.memory_budget {
                Some(b) if b.is_finite() && b >= 1.0 => b as u64,
                Some(b) => {
                    return Err(js_error(format!(
                        "Device.create: memoryBudget must be a positive number of bytes, got {b}"
                    )))
                }
                None => DEFAULT_MEMORY_BUDGET,
            };
            let device = Device::request(&opts).await.map_err(js_error)?;
            let adapter = browser_adapter_info().await.unwrap_or(JsValue::NULL);
            Ok(WebDevice { device, adapter }.into())
        })
    }

    /// `{ name, backend, deviceType, driver, features: [...], limits: {...} }`.
    #[wasm_bindgen(unchecked_return_type = "DeviceInfo")]
    pub fn info(&self) -> JsValue {
        let d = &self.device;
        let i = d.adapter_info();
        let features: Array = d
            .features()
            .iter_names()
            .map(|(n, _)| JsValue::from_str(&n.to_lowercase().replace('_', "-")))
            .collect();
        let l = d.limits();
        let limits = object(&[
            ("maxBufferSize", (l.max_buffer_size as f64).into()),
            (
                "maxStorageBufferBindingSize",
                (l.max_storage_buffer_binding_size as f64).into(),
            ),
            (
                "maxStorageBuffersPerShaderStage",
                l.max_storage_buffers_per_shader_stage.into(),
            ),
            (
                "maxComputeWorkgroupStorageSize",
                l.max_compute_workgroup_storage_size.into(),
            ),
            (
                "maxComputeInvocationsPerWorkgroup",
                l.max_compute_invocations_per_workgroup.into(),
            ),
            (
                "maxComputeWorkgroupSizeX",
                l.max_compute_workgroup_size_x.into(),
            ),
            (
                "maxComputeWorkgroupSizeY",
                l.max_compute_workgroup_size_y.into(),
            ),
            (
                "maxComputeWorkgroupSizeZ",
                l.max_compute_workgroup_size_z.into(),
            ),
            (
                "maxComputeWorkgroupsPerDimension",
                l.max_compute_workgroups_per_dimension.into(),
            ),
            ("maxBindGroups", l.max_bind_groups.into()),
        ]);
        let browser = |k: &str| get(&self.adapter, k).ok().and_then(|v| v.as_string());
        let name = match (
            browser("description"),
            browser("vendor"),
            browser("architecture"),
        ) {
            _ if !i.name.is_empty() => i.name.clone(),
            (Some(d), _, _) if !d.is_empty() => d,
            (_, Some(v), Some(a)) => format!("{v} {a}").trim().to_string(),
            _ => String::new(),
        };
        object(&[
            ("name", name.into()),
            ("adapter", self.adapter.clone()),
            ("backend", format!("{:?}", i.backend).into()),
            ("deviceType", format!("{:?}", i.device_type).into()),
            (
                "driver",
                format!("{} {}", i.driver, i.driver_info).trim().into(),
            ),
            ("features", features.into()),
            ("limits", limits),
        ])
    }
}
