//! Image endpoints: `POST /classify` and `POST /detect`. The body is the image file itself
//! (any content type but multipart) or `multipart/form-data` with the image(s) as file
//! fields; options come in the query string. The answers are the CLI's JSON.

use super::error::{ApiError, ApiResult};
use super::{blocking, App, Shared};
use crate::imageio::{decode_rgb_bytes_as, Convention};
use crate::models::detect::DetectOptions;
use crate::models::vision::Prediction;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Query, Request, State};
use axum::http::{header, request::Parts};
use axum::Json;
use serde::Deserialize;

/// The images of a request body: (name, bytes).
async fn images(app: &App, req: Request) -> ApiResult<(Parts, Vec<(String, Bytes)>)> {
    let (parts, body) = app.body(req).await?;
    let multipart = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let mut out = Vec::new();
    if multipart {
        let req = Request::from_parts(parts.clone(), Body::from(body));
        let mut form = axum::extract::Multipart::from_request(req, &())
            .await
            .map_err(|e| ApiError::bad_request(format!("malformed multipart body: {e}")))?;
        while let Some(field) = form
            .next_field()
            .await
            .map_err(|e| ApiError::bad_request(format!("malformed multipart body: {e}")))?
        {
            let name = field
                .file_name()
                .or(field.name())
                .unwrap_or("image")
                .to_string();
            let is_file = field.file_name().is_some()
                || matches!(field.name(), Some("image" | "file" | "images"));
            let data = field
                .bytes()
                .await
                .map_err(|e| ApiError::bad_request(format!("malformed multipart body: {e}")))?;
            if is_file {
                out.push((name, data));
            }
        }
    } else if !body.is_empty() {
        out.push(("image".to_string(), body));
    }
    if out.is_empty() {
        return Err(ApiError::empty(
            "no image in the request: send the file as the body, or as a multipart file field",
        ));
    }
    let max = app.config.max_client_batch_size;
    if out.len() > max {
        return Err(ApiError::too_large(format!(
            "{} images in one request; at most {max} are accepted (--max-client-batch-size)",
            out.len()
        )));
    }
    Ok((parts, out))
}

fn query<T: serde::de::DeserializeOwned>(parts: &Parts) -> ApiResult<T> {
    Query::<T>::try_from_uri(&parts.uri)
        .map(|q| q.0)
        .map_err(|e| ApiError::bad_request(format!("bad query string: {e}")))
}

/// An image as the model's reference reads it (PIL for ViT, OpenCV for YOLO).
fn decode(name: &str, bytes: &[u8], convention: Convention) -> ApiResult<image::RgbImage> {
    decode_rgb_bytes_as(bytes, convention).map_err(|e| {
        let why = match e {
            crate::Error::Image { msg, .. } => msg,
            e => e.to_string(),
        };
        ApiError::bad_request(format!("image {name}: {why}"))
    })
}

#[derive(Deserialize)]
struct ClassifyParams {
    top_k: Option<usize>,
}

#[derive(serde::Serialize)]
pub(super) struct Classified {
    image: String,
    top: Vec<Prediction>,
}

/// `POST /classify?top_k=5` → `[{image, top: [{index, label, score}]}]`.
pub(super) async fn classify(State(app): Shared, req: Request) -> ApiResult<Json<Vec<Classified>>> {
    let vit = app.ready()?.models.classify.clone().ok_or_else(|| {
        ApiError::not_found(
            "this server has no classification model (start it with --classify-model)",
        )
    })?;
    let (parts, imgs) = images(&app, req).await?;
    let p: ClassifyParams = query(&parts)?;
    let k = p.top_k.unwrap_or(5);
    if k == 0 {
        return Err(ApiError::bad_request("top_k must be at least 1"));
    }
    let _permit = app.admit()?;
    let t0 = std::time::Instant::now();
    let out = app
        .timed(blocking(move || {
            let decoded = imgs
                .iter()
                .map(|(n, b)| decode(n, b, Convention::Pil))
                .collect::<ApiResult<Vec<_>>>()?;
            let k = k.min(vit.labels().len().max(1));
            let top = vit.classify_images(&decoded, k)?;
            Ok(imgs
                .into_iter()
                .zip(top)
                .map(|((image, _), top)| Classified { image, top })
                .collect())
        }))
        .await?;
    app.metrics.inferred("/classify", t0.elapsed());
    Ok(Json(out))
}

#[derive(Deserialize)]
struct DetectParams {
    conf: Option<f32>,
    iou: Option<f32>,
    imgsz: Option<usize>,
    max_det: Option<usize>,
}

/// `POST /detect?conf=0.25&iou=0.7&imgsz=640&max_det=300` → `[{class_id, label, score, box}]`.
pub(super) async fn detect(
    State(app): Shared,
    req: Request,
) -> ApiResult<Json<Vec<crate::models::detect::Detection>>> {
    let yolo = app.ready()?.models.detect.clone().ok_or_else(|| {
        ApiError::not_found("this server has no detection model (start it with --detect-model)")
    })?;
    let (parts, mut imgs) = images(&app, req).await?;
    if imgs.len() != 1 {
        return Err(ApiError::bad_request(format!(
            "/detect takes one image per request, got {}",
            imgs.len()
        )));
    }
    let p: DetectParams = query(&parts)?;
    let d = DetectOptions::default();
    let opts = DetectOptions {
        conf: p.conf.unwrap_or(d.conf),
        iou: p.iou.unwrap_or(d.iou),
        imgsz: p.imgsz.unwrap_or(d.imgsz),
        max_det: p.max_det.unwrap_or(d.max_det),
        rect: true,
    };
    opts.validate()?;
    let _permit = app.admit()?;
    let (name, bytes) = imgs.pop().expect("one image");
    let t0 = std::time::Instant::now();
    let dets = app
        .timed(blocking(move || {
            let img = decode(&name, &bytes, Convention::OpenCv)?;
            Ok(yolo.detect_image(&img, &opts)?)
        }))
        .await?;
    app.metrics.inferred("/detect", t0.elapsed());
    Ok(Json(dets))
}
