//! The JS class `Device`: the browser's WebGPU adapter opened with its own limits and the
//! features the kernels use (shader-f16 where offered; wgpu exposes no subgroups on the web).

use super::js::{get, js_error, object, options, JsResult};
use crate::device::{Device, DeviceOptions, DEFAULT_MEMORY_BUDGET};
use crate::error::Error;
use js_sys::{Array, Promise};
use serde::Deserialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateOpts {
    /// Most bytes of buffers the device may hold (default 8 GiB).
    memory_budget: Option<f64>,
}

/// A WebGPU device.
#[wasm_bindgen(js_name = Device)]
pub struct WebDevice {
    device: Device,
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

#[wasm_bindgen(js_class = Device)]
impl WebDevice {
    /// Opens the browser's WebGPU adapter. Rejects when the browser has no WebGPU
    /// (`navigator.gpu` missing) or offers no adapter. Options: `{ memoryBudget }` (bytes).
    #[wasm_bindgen(unchecked_return_type = "Promise<Device>")]
    pub fn create(
        #[wasm_bindgen(unchecked_param_type = "{ memoryBudget?: number } | undefined")]
        options: JsValue,
    ) -> Promise {
        future_to_promise(async move {
            let o: CreateOpts = self::options(&options, "Device.create")?;
            if !has_webgpu()? {
                return Err(js_error(Error::NoAdapter {
                    detail: ": navigator.gpu is missing (this browser has no WebGPU, or the page \
                             is not a secure context: serve it over https or from localhost)"
                        .into(),
                }));
            }
            let mut opts = DeviceOptions::default();
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
            Ok(WebDevice { device }.into())
        })
    }

    /// `{ name, backend, deviceType, driver, features: [...], limits: {...} }`.
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
        object(&[
            ("name", i.name.as_str().into()),
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
