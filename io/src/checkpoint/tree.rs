//! A checkpoint as a generic tree of HDF5 groups and datasets with typed attributes: its
//! SHA-256 digests, and its writing to and reading from an HDF5 file.
//!
//! The digest is defined on the tree (not on HDF5's bytes), so any tool that reads the
//! datasets and attributes can recompute it; `docs/checkpoints.md` gives the recipe.

use std::borrow::Cow;
use std::collections::BTreeMap;

use hdf5::types::{FixedUnicode, FloatSize, IntSize, TypeDescriptor, VarLenUnicode};
use hdf5::{Dataset, Group, H5Type, Location, LocationType};
use myelin_components::BlockRef;
use ndarray::{ArrayViewD, IxDyn};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

/// Name of the per-dataset attribute holding the hex SHA-256 of its elements.
pub(crate) const DATASET_DIGEST_ATTR: &str = "sha256";
/// Name of the root attribute holding the hex SHA-256 of the whole tree.
pub(crate) const CONTENT_DIGEST_ATTR: &str = "content_sha256";
/// First line of the canonical text the content digest is taken over.
const DIGEST_HEADER: &str = "myelin-checkpoint-digest 1\n";

/// The elements of a dataset, borrowed when written from a live simulation, owned when
/// read from a file.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Array<'a> {
    /// Bytes (text is stored as UTF-8 bytes).
    U8(Cow<'a, [u8]>),
    /// 16-bit unsigned integers (block-local targets, delays).
    U16(Cow<'a, [u16]>),
    /// 32-bit unsigned integers (row pointers, integer state, spike lists).
    U32(Cow<'a, [u32]>),
    /// 64-bit unsigned integers.
    U64(Cow<'a, [u64]>),
    /// Single-precision floats (state, weights, ring buffers).
    F32(Cow<'a, [f32]>),
    /// Double-precision floats.
    F64(Cow<'a, [f64]>),
    /// One field of a block's synapses, a `u16` or `f32` column like the others in the
    /// file and the digest; taken out of the synapses only while it is digested or written,
    /// so capturing a network holds no second copy of its connectivity.
    Synapses(BlockRef<'a>, SynapseField),
}

/// A field of a block's synapses (`myelin_components::Synapse`), stored as its own dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SynapseField {
    /// The block-local targets (`u16`).
    Target,
    /// The delays in steps (`u16`).
    Delay,
    /// The weights (`f32`).
    Weight,
}

/// Elements a field is taken out in at a time, for its digest.
const FIELD_CHUNK: usize = 1 << 14;

impl SynapseField {
    /// The column of this field of the synapses `syn`, as the array it is stored as.
    fn column(self, syn: impl Iterator<Item = myelin_components::Synapse>) -> Array<'static> {
        match self {
            Self::Target => Array::U16(syn.map(|s| s.target).collect()),
            Self::Delay => Array::U16(syn.map(|s| s.delay).collect()),
            Self::Weight => Array::F32(syn.map(|s| s.weight).collect()),
        }
    }
}

impl Array<'_> {
    /// The type's name in the digest text and in `myelin inspect`.
    pub(crate) fn dtype_name(&self) -> &'static str {
        match self {
            Self::U8(_) => "u8",
            Self::U16(_) => "u16",
            Self::U32(_) => "u32",
            Self::U64(_) => "u64",
            Self::F32(_) => "f32",
            Self::F64(_) => "f64",
            Self::Synapses(_, SynapseField::Weight) => "f32",
            Self::Synapses(..) => "u16",
        }
    }

    /// Number of elements.
    pub(crate) fn len(&self) -> usize {
        match self {
            Self::U8(v) => v.len(),
            Self::U16(v) => v.len(),
            Self::U32(v) => v.len(),
            Self::U64(v) => v.len(),
            Self::F32(v) => v.len(),
            Self::F64(v) => v.len(),
            Self::Synapses(v, _) => v.len(),
        }
    }

    /// SHA-256 of the elements as little-endian bytes, in row-major order.
    pub(crate) fn digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        self.le_update(&mut h);
        h.finalize().into()
    }

    /// Feeds the elements to `h` as little-endian bytes, in row-major order.
    fn le_update(&self, h: &mut Sha256) {
        match self {
            Self::U8(v) => le_update(h, v),
            Self::U16(v) => le_update(h, v),
            Self::U32(v) => le_update(h, v),
            Self::U64(v) => le_update(h, v),
            Self::F32(v) => le_update(h, v),
            Self::F64(v) => le_update(h, v),
            Self::Synapses(blk, field) => {
                let mut syn = blk.iter().peekable();
                while syn.peek().is_some() {
                    field.column(syn.by_ref().take(FIELD_CHUNK)).le_update(h);
                }
            }
        }
    }
}

/// Feeds `data` to `h` as little-endian bytes.
fn le_update<T: bytemuck::Pod>(h: &mut Sha256, data: &[T]) {
    let bytes: &[u8] = bytemuck::cast_slice(data);
    if cfg!(target_endian = "little") {
        h.update(bytes);
        return;
    }
    let size = std::mem::size_of::<T>();
    let mut buf = Vec::with_capacity(size);
    for element in bytes.chunks_exact(size) {
        buf.clear();
        buf.extend(element.iter().rev());
        h.update(&buf);
    }
}

/// A scalar attribute value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Attr {
    /// An unsigned integer.
    U64(u64),
    /// A float.
    F64(f64),
    /// A UTF-8 string.
    Str(String),
}

impl From<u64> for Attr {
    fn from(v: u64) -> Self {
        Self::U64(v)
    }
}
impl From<usize> for Attr {
    fn from(v: usize) -> Self {
        Self::U64(v as u64)
    }
}
impl From<f64> for Attr {
    fn from(v: f64) -> Self {
        Self::F64(v)
    }
}
impl From<&str> for Attr {
    fn from(v: &str) -> Self {
        Self::Str(v.to_string())
    }
}
impl From<String> for Attr {
    fn from(v: String) -> Self {
        Self::Str(v)
    }
}

impl std::fmt::Display for Attr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::U64(v) => write!(f, "{v}"),
            Self::F64(v) => write!(f, "{v}"),
            Self::Str(v) => write!(f, "{v:?}"),
        }
    }
}

/// Attributes by name.
pub(crate) type Attrs = BTreeMap<String, Attr>;

/// A dataset: shape, elements and attributes.
#[derive(Clone, Debug)]
pub(crate) struct Node<'a> {
    /// Shape (row-major); its product is the number of elements.
    pub shape: Vec<usize>,
    /// The elements.
    pub data: Array<'a>,
    /// Attributes (without the digest attribute, which the writer adds).
    pub attrs: Attrs,
}

/// Groups and datasets by absolute path (`/`, `/populations/0`, ...).
#[derive(Clone, Debug, Default)]
pub(crate) struct Tree<'a> {
    /// Every group (the root `/` included) with its attributes.
    pub groups: BTreeMap<String, Attrs>,
    /// Every dataset.
    pub datasets: BTreeMap<String, Node<'a>>,
}

/// Joins a parent path and a member name.
pub(crate) fn join(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

impl<'a> Tree<'a> {
    /// Adds group `path` (and its missing parents) with attributes `attrs`.
    pub(crate) fn group(&mut self, path: &str, attrs: Attrs) {
        self.parents(path);
        self.groups
            .entry(path.to_string())
            .or_default()
            .extend(attrs);
    }

    /// Adds dataset `path` (and its missing parent groups).
    pub(crate) fn dataset(&mut self, path: &str, shape: Vec<usize>, data: Array<'a>, attrs: Attrs) {
        self.parents(path);
        self.datasets
            .insert(path.to_string(), Node { shape, data, attrs });
    }

    fn parents(&mut self, path: &str) {
        self.groups.entry("/".into()).or_default();
        let mut at = 0;
        while let Some(i) = path[at + 1..].find('/') {
            at += i + 1;
            self.groups.entry(path[..at].to_string()).or_default();
        }
    }

    /// The hex SHA-256 of every dataset's elements, computed in parallel.
    pub(crate) fn dataset_digests(&self) -> BTreeMap<String, String> {
        let list: Vec<(&String, &Node<'a>)> = self.datasets.iter().collect();
        list.into_par_iter()
            .map(|(path, node)| (path.clone(), hex(&node.data.digest())))
            .collect()
    }

    /// The content digest: SHA-256 of the canonical text of the tree (see
    /// `docs/checkpoints.md`), given each dataset's element digest.
    pub(crate) fn content_digest(&self, digests: &BTreeMap<String, String>) -> String {
        let mut h = Sha256::new();
        h.update(DIGEST_HEADER.as_bytes());
        let mut paths: Vec<&String> = self.groups.keys().chain(self.datasets.keys()).collect();
        paths.sort();
        for path in paths {
            if let Some(attrs) = self.groups.get(path.as_str()) {
                h.update(format!("G {}\n", lp(path)).as_bytes());
                hash_attrs(&mut h, attrs);
            }
            if let Some(node) = self.datasets.get(path.as_str()) {
                let shape: Vec<String> = node.shape.iter().map(usize::to_string).collect();
                let digest = digests.get(path.as_str()).map_or("", String::as_str);
                h.update(
                    format!(
                        "D {} {} [{}] {digest}\n",
                        lp(path),
                        node.data.dtype_name(),
                        shape.join(",")
                    )
                    .as_bytes(),
                );
                hash_attrs(&mut h, &node.attrs);
            }
        }
        hex(&h.finalize())
    }
}

/// A string prefixed by its length in bytes (`5:hello`), so no text is ambiguous.
fn lp(s: &str) -> String {
    format!("{}:{s}", s.len())
}

fn hash_attrs(h: &mut Sha256, attrs: &Attrs) {
    for (name, value) in attrs {
        if name == DATASET_DIGEST_ATTR || name == CONTENT_DIGEST_ATTR {
            continue;
        }
        let v = match value {
            Attr::U64(x) => format!("u64 {x}"),
            Attr::F64(x) => format!("f64 {:016x}", x.to_bits()),
            Attr::Str(s) => format!("str {}", lp(s)),
        };
        h.update(format!("A {} {v}\n", lp(name)).as_bytes());
    }
}

/// Lower-case hex of bytes.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------------------
// Writing.

/// Writes `tree` into the empty file whose root group is `root`: groups in path order (so
/// parents come first), then datasets, each with its attributes and its digest attribute
/// from `digests`; `content` becomes the root's content digest attribute. `op` receives
/// what was being done when an HDF5 call fails.
pub(crate) fn write_tree(
    root: &Group,
    tree: &Tree<'_>,
    digests: &BTreeMap<String, String>,
    content: &str,
) -> Result<(), (String, hdf5::Error)> {
    for (path, attrs) in &tree.groups {
        let g = if path == "/" {
            root.clone()
        } else {
            root.create_group(path.trim_start_matches('/'))
                .map_err(|e| (format!("create group {path}"), e))?
        };
        write_attrs(&g, path, attrs)?;
        if path == "/" {
            write_attr(&g, path, CONTENT_DIGEST_ATTR, &Attr::Str(content.into()))?;
        }
    }
    for (path, node) in &tree.datasets {
        let ds =
            write_dataset(root, path, node).map_err(|e| (format!("write dataset {path}"), e))?;
        write_attrs(&ds, path, &node.attrs)?;
        let digest = digests.get(path).cloned().unwrap_or_default();
        write_attr(&ds, path, DATASET_DIGEST_ATTR, &Attr::Str(digest))?;
    }
    Ok(())
}

fn write_dataset(root: &Group, path: &str, node: &Node<'_>) -> hdf5::Result<Dataset> {
    write_data(root, path.trim_start_matches('/'), &node.shape, &node.data)
}

fn write_data(
    root: &Group,
    name: &str,
    shape: &[usize],
    data: &Array<'_>,
) -> hdf5::Result<Dataset> {
    match data {
        Array::U8(v) => write_array(root, name, shape, v),
        Array::U16(v) => write_array(root, name, shape, v),
        Array::U32(v) => write_array(root, name, shape, v),
        Array::U64(v) => write_array(root, name, shape, v),
        Array::F32(v) => write_array(root, name, shape, v),
        Array::F64(v) => write_array(root, name, shape, v),
        Array::Synapses(blk, field) => write_data(root, name, shape, &field.column(blk.iter())),
    }
}

fn write_array<T: H5Type>(
    root: &Group,
    name: &str,
    shape: &[usize],
    data: &[T],
) -> hdf5::Result<Dataset> {
    let view = ArrayViewD::from_shape(IxDyn(shape), data).map_err(|e| {
        hdf5::Error::from(format!(
            "shape {shape:?} does not fit {} elements: {e}",
            data.len()
        ))
    })?;
    root.new_dataset_builder().with_data(view).create(name)
}

fn write_attrs(loc: &Location, path: &str, attrs: &Attrs) -> Result<(), (String, hdf5::Error)> {
    for (name, value) in attrs {
        write_attr(loc, path, name, value)?;
    }
    Ok(())
}

fn write_attr(
    loc: &Location,
    path: &str,
    name: &str,
    value: &Attr,
) -> Result<(), (String, hdf5::Error)> {
    let r = match value {
        Attr::U64(v) => loc
            .new_attr::<u64>()
            .create(name)
            .and_then(|a| a.write_scalar(v)),
        Attr::F64(v) => loc
            .new_attr::<f64>()
            .create(name)
            .and_then(|a| a.write_scalar(v)),
        Attr::Str(s) => write_fixed_str(loc, name, s),
    };
    r.map_err(|e| (format!("write attribute {name} of {path}"), e))
}

/// Longest string attribute [bytes]; strings are stored with a fixed length (the smallest
/// of the classes below that holds them), inline in the checksummed object header, never in
/// HDF5's unchecksummed global heap.
pub(crate) const MAX_STR_ATTR: usize = 4096;

fn write_fixed_str(loc: &Location, name: &str, s: &str) -> hdf5::Result<()> {
    macro_rules! write_as {
        ($n:literal) => {{
            let v: FixedUnicode<$n> = s
                .parse()
                .map_err(|e| hdf5::Error::from(format!("string attribute {name}: {e}")))?;
            loc.new_attr::<FixedUnicode<$n>>()
                .create(name)
                .and_then(|a| a.write_scalar(&v))
        }};
    }
    match s.len() {
        0..=32 => write_as!(32),
        33..=256 => write_as!(256),
        257..=MAX_STR_ATTR => write_as!(4096),
        n => Err(hdf5::Error::from(format!(
            "string attribute {name} is {n} bytes long, more than {MAX_STR_ATTR}"
        ))),
    }
}

/// Reads a fixed-length string attribute (also variable-length ones when `varlen`, which
/// live in HDF5's unchecksummed global heap: never for checkpoints). `None` when absent or
/// of another type.
pub(crate) fn read_str_attr(loc: &Location, name: &str, varlen: bool) -> Option<String> {
    let a = loc.attr(name).ok()?;
    match a.dtype().and_then(|t| t.to_descriptor()).ok()? {
        TypeDescriptor::FixedUnicode(n) | TypeDescriptor::FixedAscii(n) if n <= MAX_STR_ATTR => {
            let v = a.read_scalar::<FixedUnicode<MAX_STR_ATTR>>().ok()?;
            String::from_utf8(v.as_bytes().to_vec()).ok()
        }
        TypeDescriptor::VarLenUnicode | TypeDescriptor::VarLenAscii if varlen => a
            .read_scalar::<VarLenUnicode>()
            .ok()
            .map(|v| v.as_str().to_string()),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------
// Reading.

/// Reads every group, dataset and attribute under `root` into a tree. Fails (with what was
/// being read) on an HDF5 error or on a type this layout never uses.
pub(crate) fn read_tree(root: &Group) -> Result<Tree<'static>, (String, String)> {
    let mut tree = Tree::default();
    tree.groups.insert("/".into(), read_attrs(root, "/")?);
    read_members(root, "/", &mut tree)?;
    Ok(tree)
}

fn read_members(g: &Group, path: &str, tree: &mut Tree<'static>) -> Result<(), (String, String)> {
    let names = g
        .member_names()
        .map_err(|e| (format!("list the members of {path}"), e.to_string()))?;
    for name in names {
        let at = join(path, &name);
        let kind = g
            .loc_type_by_name(&name)
            .map_err(|e| (format!("open {at}"), e.to_string()))?;
        match kind {
            LocationType::Group => {
                let sub = g
                    .group(&name)
                    .map_err(|e| (format!("open group {at}"), e.to_string()))?;
                tree.groups.insert(at.clone(), read_attrs(&sub, &at)?);
                read_members(&sub, &at, tree)?;
            }
            LocationType::Dataset => {
                let ds = g
                    .dataset(&name)
                    .map_err(|e| (format!("open dataset {at}"), e.to_string()))?;
                let node = read_node(&ds, &at)?;
                tree.datasets.insert(at, node);
            }
            #[allow(unreachable_patterns)]
            _ => return Err((format!("read {at}"), "not a group or a dataset".into())),
        }
    }
    Ok(())
}

pub(crate) fn read_node(ds: &Dataset, path: &str) -> Result<Node<'static>, (String, String)> {
    let op = || format!("read dataset {path}");
    let desc = ds
        .dtype()
        .and_then(|t| t.to_descriptor())
        .map_err(|e| (op(), e.to_string()))?;
    let data = match desc {
        TypeDescriptor::Unsigned(IntSize::U1) => Array::U8(read_vec(ds, path)?),
        TypeDescriptor::Unsigned(IntSize::U2) => Array::U16(read_vec(ds, path)?),
        TypeDescriptor::Unsigned(IntSize::U4) => Array::U32(read_vec(ds, path)?),
        TypeDescriptor::Unsigned(IntSize::U8) => Array::U64(read_vec(ds, path)?),
        TypeDescriptor::Float(FloatSize::U4) => Array::F32(read_vec(ds, path)?),
        TypeDescriptor::Float(FloatSize::U8) => Array::F64(read_vec(ds, path)?),
        other => return Err((op(), format!("unexpected element type {other}"))),
    };
    Ok(Node {
        shape: ds.shape(),
        data,
        attrs: read_attrs(ds, path)?,
    })
}

fn read_vec<T: H5Type + Clone>(
    ds: &Dataset,
    path: &str,
) -> Result<Cow<'static, [T]>, (String, String)> {
    ds.read_raw::<T>()
        .map(Cow::Owned)
        .map_err(|e| (format!("read dataset {path}"), e.to_string()))
}

pub(crate) fn read_attrs(loc: &Location, path: &str) -> Result<Attrs, (String, String)> {
    let names = loc
        .attr_names()
        .map_err(|e| (format!("list the attributes of {path}"), e.to_string()))?;
    let mut out = Attrs::new();
    for name in names {
        let op = || format!("read attribute {name} of {path}");
        let a = loc.attr(&name).map_err(|e| (op(), e.to_string()))?;
        let desc = a
            .dtype()
            .and_then(|t| t.to_descriptor())
            .map_err(|e| (op(), e.to_string()))?;
        let value = match desc {
            TypeDescriptor::Unsigned(_) => a.read_scalar::<u64>().map(Attr::U64),
            TypeDescriptor::Float(_) => a.read_scalar::<f64>().map(Attr::F64),
            TypeDescriptor::FixedUnicode(n) | TypeDescriptor::FixedAscii(n)
                if n <= MAX_STR_ATTR =>
            {
                match read_str_attr(loc, &name, false) {
                    Some(s) => Ok(Attr::Str(s)),
                    None => return Err((op(), "not a UTF-8 string".into())),
                }
            }
            other => return Err((op(), format!("unexpected attribute type {other}"))),
        };
        out.insert(name.clone(), value.map_err(|e| (op(), e.to_string()))?);
    }
    Ok(out)
}
