//! Arbitrary bytes as an image file: `decode_rgb_bytes` (format sniffing, the image crate's
//! decoders, strict-then-lenient zune-jpeg, EXIF orientation, size limits) returns pixels or a
//! typed `Error::Image`, never a panic or an allocation past its limits; decoded pixels go
//! through both preprocessing paths (a ViT image processor and YOLO's letterbox), whose
//! tensors must have the promised shapes and finite values in range.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wgpu_infer::imageio::{decode_rgb_bytes, MAX_SIDE};
use wgpu_infer::models::vision::ImageProcessorConfig;
use wgpu_infer::models::yolo::{to_tensor, Yolo};
use wgpu_infer::Error;

fuzz_target!(|data: &[u8]| {
    let img = match decode_rgb_bytes(data) {
        Ok(img) => img,
        Err(e) => {
            assert!(matches!(e, Error::Image { .. }), "{e:?}");
            return;
        }
    };
    let (w, h) = img.dimensions();
    assert!(w >= 1 && h >= 1 && w <= MAX_SIDE && h <= MAX_SIDE);
    // ViT: resize to 32x32, rescale, normalize with mean 0.5 / std 0.5: values in [-1, 1].
    let px = ImageProcessorConfig::vit_default(32)
        .preprocess(&img, 32)
        .expect("a decoded image always preprocesses");
    assert_eq!(px.shape(), &[3, 32, 32]);
    assert!(px.to_f32_vec().iter().all(|v| (-1.0..=1.0).contains(v)));
    // YOLO: letterbox to 64 (rect): both sides multiples of 32, pixels in [0, 1].
    if w.max(h) <= 4096 {
        let (lb, info) = Yolo::letterbox(&img, 64, true).expect("a decoded image letterboxes");
        assert_eq!(lb.dimensions(), (info.w, info.h));
        assert!(info.w % 32 == 0 && info.h % 32 == 0 && info.w <= 64 && info.h <= 64);
        let t = to_tensor(&lb).expect("a letterboxed image converts");
        assert_eq!(t.shape(), &[1, 3, info.h as usize, info.w as usize]);
        assert!(t.to_f32_vec().iter().all(|v| (0.0..=1.0).contains(v)));
    }
});
