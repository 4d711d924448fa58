//! Builders of `Summary` protos, one per kind of value, laid out as `torch.utils.tensorboard`'s
//! `summary` module lays them out.

use super::proto::{
    self, summary::value::Value as V, summary::Value, summary_metadata::PluginData,
    tensor_shape_proto::Dim, HistogramProto, Summary, SummaryMetadata, TensorProto,
    TensorShapeProto,
};
use crate::error::{Error, Result};
use crate::tensor::{DType, Tensor};

fn one(tag: &str, metadata: Option<SummaryMetadata>, value: V) -> Summary {
    Summary {
        value: vec![Value {
            tag: tag.to_owned(),
            metadata,
            value: Some(value),
            ..Default::default()
        }],
    }
}

pub(crate) fn plugin_metadata(plugin: &str, content: Vec<u8>) -> SummaryMetadata {
    SummaryMetadata {
        plugin_data: Some(PluginData {
            plugin_name: plugin.to_owned(),
            content,
        }),
        ..Default::default()
    }
}

/// A scalar, stored as a float32 `simple_value` (what the Scalars tab reads).
pub(crate) fn scalar(tag: &str, value: f64) -> Summary {
    one(tag, None, V::SimpleValue(value as f32))
}

/// Text for the Text tab: a string tensor of shape `[1]` owned by the `text` plugin, under the
/// tag `<tag>/text_summary` (as PyTorch names it).
pub(crate) fn text(tag: &str, text: &str) -> Summary {
    let tensor = TensorProto {
        dtype: proto::DT_STRING,
        tensor_shape: Some(shape_proto(&[1])),
        string_val: vec![text.as_bytes().to_vec()],
        ..Default::default()
    };
    one(
        &format!("{tag}/text_summary"),
        Some(plugin_metadata("text", Vec::new())),
        V::Tensor(tensor),
    )
}

pub(crate) fn shape_proto(shape: &[usize]) -> TensorShapeProto {
    TensorShapeProto {
        dim: shape
            .iter()
            .map(|&s| Dim {
                size: s as i64,
                name: String::new(),
            })
            .collect(),
        unknown_rank: false,
    }
}

/// TensorFlow's default histogram bucket limits: ±1e-12·1.1^k up to 1e20, zero, and ±f64::MAX
/// at the ends (`tensorflow/core/lib/histogram/histogram.cc`).
pub(crate) fn default_bucket_limits() -> Vec<f64> {
    let mut pos = Vec::new();
    let mut v = 1.0e-12;
    while v < 1.0e20 {
        pos.push(v);
        v *= 1.1;
    }
    pos.push(f64::MAX);
    let mut limits: Vec<f64> = pos.iter().rev().map(|v| -v).collect();
    limits.push(0.0);
    limits.extend(pos);
    limits
}

/// A histogram of `values` with TensorFlow's default buckets: a value `v` goes into the first
/// bucket whose limit exceeds it, and each run of empty buckets is merged into one (as
/// `Histogram::EncodeToProto` does), so the proto stays small. NaNs are left out of the buckets,
/// as TensorBoard would drop them.
pub(crate) fn histogram_proto(values: &[f64]) -> HistogramProto {
    let limits = default_bucket_limits();
    let mut counts = vec![0.0f64; limits.len()];
    let (mut min, mut max, mut sum, mut sum_squares, mut num) =
        (f64::INFINITY, f64::NEG_INFINITY, 0.0, 0.0, 0.0);
    for &v in values.iter().filter(|v| !v.is_nan()) {
        let i = limits.partition_point(|&l| l <= v).min(limits.len() - 1);
        counts[i] += 1.0;
        min = min.min(v);
        max = max.max(v);
        sum += v;
        sum_squares += v * v;
        num += 1.0;
    }
    if num == 0.0 {
        (min, max) = (0.0, 0.0);
    }
    let (mut bucket_limit, mut bucket) = (Vec::new(), Vec::new());
    let mut i = 0;
    while i < counts.len() {
        let (mut end, mut count) = (limits[i], counts[i]);
        i += 1;
        if count <= 0.0 {
            while i < counts.len() && counts[i] <= 0.0 {
                (end, count) = (limits[i], counts[i]);
                i += 1;
            }
        }
        bucket_limit.push(end);
        bucket.push(count);
    }
    HistogramProto {
        min,
        max,
        num,
        sum,
        sum_squares,
        bucket_limit,
        bucket,
    }
}

pub(crate) fn histogram(tag: &str, values: &[f64]) -> Summary {
    one(tag, None, V::Histo(histogram_proto(values)))
}

/// An image summary: `t` in `dataformats` `"CHW"`, `"HWC"` or `"HW"` with 1 (gray), 3 (RGB) or
/// 4 (RGBA) channels, PNG-encoded. Floats are taken as `[0, 1]` and scaled by 255 (like
/// PyTorch); integer and bool tensors as `0..=255` (bool: 0 or 255). Values are clamped.
pub(crate) fn image(tag: &str, t: &Tensor, dataformats: &str) -> Result<Summary> {
    let shape = t.shape();
    let bad = |why: &str| {
        Err(Error::Shape(format!(
            "add_image: {why} (tensor of shape {shape:?}, dataformats \"{dataformats}\")"
        )))
    };
    let (h, w, c, hwc) = match (dataformats, shape) {
        ("CHW", &[c, h, w]) => (h, w, c, false),
        ("HWC", &[h, w, c]) => (h, w, c, true),
        ("HW", &[h, w]) => (h, w, 1, true),
        ("CHW" | "HWC" | "HW", _) => {
            return bad(&format!("expected {} dims", dataformats.len()));
        }
        _ => return bad("dataformats must be \"CHW\", \"HWC\" or \"HW\""),
    };
    if !matches!(c, 1 | 3 | 4) {
        return bad(&format!("{c} channels; expected 1, 3 or 4"));
    }
    if h == 0 || w == 0 || h > i32::MAX as usize || w > i32::MAX as usize {
        return bad("height and width must be positive");
    }
    let scale = match t.dtype() {
        DType::F32 | DType::F64 => 255.0,
        DType::Bool => 255.0,
        DType::I64 => 1.0,
    };
    let vals = t.to_vec_f64();
    let mut pixels = vec![0u8; h * w * c];
    for y in 0..h {
        for x in 0..w {
            for ch in 0..c {
                let src = if hwc {
                    (y * w + x) * c + ch
                } else {
                    (ch * h + y) * w + x
                };
                let v = vals[src] * scale;
                pixels[(y * w + x) * c + ch] = if v.is_nan() {
                    0
                } else {
                    v.round().clamp(0.0, 255.0) as u8
                };
            }
        }
    }
    let encoded = encode_png(&pixels, w as u32, h as u32, c)?;
    let img = proto::summary::Image {
        height: h as i32,
        width: w as i32,
        colorspace: c as i32,
        encoded_image_string: encoded,
    };
    Ok(one(tag, None, V::Image(img)))
}

/// PNG-encodes 8-bit interleaved pixels with `c` channels (1 gray, 3 RGB, 4 RGBA).
pub(crate) fn encode_png(pixels: &[u8], width: u32, height: u32, c: usize) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, width, height);
    enc.set_color(match c {
        1 => png::ColorType::Grayscale,
        3 => png::ColorType::Rgb,
        _ => png::ColorType::Rgba,
    });
    enc.set_depth(png::BitDepth::Eight);
    let png_err = |e: png::EncodingError| Error::Format(format!("add_image: PNG encoding: {e}"));
    let mut w = enc.write_header().map_err(png_err)?;
    w.write_image_data(pixels).map_err(png_err)?;
    w.finish().map_err(png_err)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_buckets_are_symmetric_and_increasing() {
        let l = default_bucket_limits();
        assert!(l.windows(2).all(|w| w[0] < w[1]));
        let n = l.len();
        assert_eq!(l[n / 2], 0.0);
        for i in 0..n / 2 {
            assert_eq!(l[i], -l[n - 1 - i]);
        }
        // 1e-12·1.1^k < 1e20 gives k = 0..=773, plus f64::MAX: 775 limits per side
        assert_eq!(n, 2 * 775 + 1);
        assert_eq!(l[n - 1], f64::MAX);
    }

    #[test]
    fn histogram_counts_each_value_in_the_bucket_below_its_limit() {
        let h = histogram_proto(&[0.5, 0.5, 2.0, -1.0, 0.0]);
        assert_eq!((h.min, h.max, h.num), (-1.0, 2.0, 5.0));
        assert_eq!(h.sum, 2.0);
        assert_eq!(h.sum_squares, 0.25 + 0.25 + 4.0 + 1.0);
        assert_eq!(h.bucket.iter().sum::<f64>(), 5.0);
        // every nonempty bucket's values lie below its limit and at or above the previous one
        let l = default_bucket_limits();
        let nonempty: Vec<(f64, f64)> = h
            .bucket_limit
            .iter()
            .zip(&h.bucket)
            .filter(|(_, c)| **c > 0.0)
            .map(|(l, c)| (*l, *c))
            .collect();
        let upper = |v: f64| l[l.partition_point(|&x| x <= v)];
        assert_eq!(
            nonempty,
            vec![
                (upper(-1.0), 1.0),
                (upper(0.0), 1.0),
                (upper(0.5), 2.0),
                (upper(2.0), 1.0)
            ]
        );
        // no two empty buckets in a row: runs are merged
        assert!(h.bucket.windows(2).all(|w| w[0] > 0.0 || w[1] > 0.0));
    }

    #[test]
    fn image_rejects_wrong_channel_counts_and_formats() {
        let t = Tensor::zeros(&[2, 4, 4]);
        let e = image("x", &t, "CHW").unwrap_err().to_string();
        assert!(e.contains("2 channels"), "{e}");
        let e = image("x", &t, "NCHW").unwrap_err().to_string();
        assert!(e.contains("dataformats must be"), "{e}");
        let e = image("x", &Tensor::zeros(&[4, 4]), "CHW")
            .unwrap_err()
            .to_string();
        assert!(e.contains("expected 3 dims"), "{e}");
    }
}
