//! Conversions between JS values and the core's types: errors (every failure becomes a JS
//! `Error` whose message is the native one), option objects (checked field by field, unknown
//! fields refused), callbacks, `ImageData`, and results.

use crate::imageio::MAX_SIDE;
use image::RgbImage;
use js_sys::{Function, Object, Reflect, JSON};
use serde::de::DeserializeOwned;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

pub(crate) type JsResult<T> = std::result::Result<T, JsValue>;

/// A JS `Error` with `msg` (what a rejected promise carries).
pub(crate) fn js_error(msg: impl std::fmt::Display) -> JsValue {
    js_sys::Error::new(&msg.to_string()).into()
}

/// `obj[key]` (undefined when absent).
pub(crate) fn get(obj: &JsValue, key: &str) -> JsResult<JsValue> {
    Reflect::get(obj, &JsValue::from_str(key))
}

/// An options object as `T`: `undefined`/`null` give `T::default()`; anything else must be a
/// plain object whose data fields deserialize as `T` (function-valued fields, the callbacks,
/// are read separately with [`callback`]). `what` names the call in messages.
pub(crate) fn options<T: DeserializeOwned + Default>(v: &JsValue, what: &str) -> JsResult<T> {
    if v.is_undefined() || v.is_null() {
        return Ok(T::default());
    }
    if !v.is_object() || js_sys::Array::is_array(v) || v.is_function() {
        return Err(js_error(format!("{what}: options must be an object")));
    }
    let json = JSON::stringify(v)
        .map_err(|e| js_error(format!("{what}: options cannot be read ({})", describe(&e))))?;
    let json = json.as_string().unwrap_or_default();
    serde_json::from_str(&json).map_err(|e| {
        // serde_json's "at line 1 column N" means nothing to a JS caller.
        let msg = e.to_string();
        let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
        js_error(format!("{what}: invalid options: {msg}"))
    })
}

/// The function `opts[key]`, if set; anything else there is an error.
pub(crate) fn callback(opts: &JsValue, key: &str, what: &str) -> JsResult<Option<Function>> {
    if !opts.is_object() {
        return Ok(None);
    }
    let v = get(opts, key)?;
    if v.is_undefined() || v.is_null() {
        return Ok(None);
    }
    v.dyn_into::<Function>()
        .map(Some)
        .map_err(|_| js_error(format!("{what}: {key} must be a function")))
}

/// A thrown JS value as text.
pub(crate) fn describe(e: &JsValue) -> String {
    if let Some(err) = e.dyn_ref::<js_sys::Error>() {
        return String::from(err.message());
    }
    e.as_string().unwrap_or_else(|| format!("{e:?}"))
}

/// The RGB pixels of an `ImageData` (or any `{ width, height, data }` with RGBA bytes, 4 per
/// pixel, row-major): alpha is dropped, as PIL's `convert("RGB")` does.
pub(crate) fn rgb_image(v: &JsValue) -> JsResult<RgbImage> {
    let bad = |msg: &str| js_error(format!("bad image: {msg}"));
    if !v.is_object() {
        return Err(bad(
            "expected an ImageData (ctx.getImageData(...)) or { width, height, data }",
        ));
    }
    let side = |key: &str| -> JsResult<u32> {
        let x = get(v, key)?.as_f64().ok_or_else(|| {
            bad(&format!(
                "{key} is missing or not a number (expected an ImageData)"
            ))
        })?;
        if x.fract() != 0.0 || x < 1.0 || x > MAX_SIDE as f64 {
            return Err(bad(&format!(
                "{key} {x} is not a whole number of pixels in 1..={MAX_SIDE}"
            )));
        }
        Ok(x as u32)
    };
    let (w, h) = (side("width")?, side("height")?);
    let data = get(v, "data")?;
    let want = w as usize * h as usize * 4;
    let len = get(&data, "length")
        .ok()
        .and_then(|l| l.as_f64())
        .ok_or_else(|| bad("data is missing (expected RGBA bytes)"))?;
    if !(data.is_instance_of::<js_sys::Uint8ClampedArray>()
        || data.is_instance_of::<js_sys::Uint8Array>())
    {
        return Err(bad(
            "data must be a Uint8ClampedArray or Uint8Array of RGBA bytes",
        ));
    }
    if len as usize != want {
        return Err(bad(&format!(
            "data has {len} bytes; {w}x{h} RGBA needs {want}"
        )));
    }
    let rgba = js_sys::Uint8Array::new(&data).to_vec();
    let mut rgb = Vec::with_capacity(w as usize * h as usize * 3);
    for p in rgba.chunks_exact(4) {
        rgb.extend_from_slice(&p[..3]);
    }
    RgbImage::from_raw(w, h, rgb).ok_or_else(|| bad("pixel buffer size mismatch"))
}

/// `value` as a JS value through JSON (results: arrays of plain objects).
pub(crate) fn to_js<T: serde::Serialize>(value: &T) -> JsResult<JsValue> {
    let json = serde_json::to_string(value).map_err(js_error)?;
    JSON::parse(&json)
}

/// A plain object from (key, value) pairs.
pub(crate) fn object(fields: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (k, v) in fields {
        let _ = Reflect::set(&o, &JsValue::from_str(k), v);
    }
    o.into()
}
