//! The lowering context ops emit dispatches into, and the device forms of constants.

use super::{Constant, Graph, Source, ValueId};
use crate::device::{BindingKind, Device, Kernel, KernelKey, TexFormat};
use crate::error::{Error, Result};
use crate::tensor::ValueInfo;
use std::sync::Arc;

/// A device resource holding (part of) a constant.
#[derive(Debug)]
pub enum Resource {
    Buffer {
        buffer: wgpu::Buffer,
        size: u64,
    },
    Texture {
        texture: wgpu::Texture,
        view: wgpu::TextureView,
        format: TexFormat,
    },
}

/// One piece of a packed constant. `meta` is op-defined (e.g. the row range it covers).
#[derive(Debug)]
pub struct PackedChunk {
    pub resource: Resource,
    pub meta: [u32; 4],
}

impl PackedChunk {
    /// `bytes` uploaded as a `width` x `height` texture of `format` (a kernel's packed layout).
    pub fn texture(
        device: &Device,
        label: &str,
        (width, height): (usize, usize),
        format: TexFormat,
        bytes: &[u8],
        meta: [u32; 4],
    ) -> Result<PackedChunk> {
        let (texture, view) =
            device.upload_texture(label, width as u32, height as u32, format, bytes)?;
        Ok(PackedChunk {
            resource: Resource::Texture {
                texture,
                view,
                format,
            },
            meta,
        })
    }

    /// `bytes` uploaded as a read-only storage buffer chunk (a kernel's packed weight layout).
    pub fn upload(device: &Device, label: &str, bytes: &[u8], meta: [u32; 4]) -> PackedChunk {
        let buffer = device.upload(label, bytes, wgpu::BufferUsages::empty());
        PackedChunk {
            resource: Resource::Buffer {
                buffer,
                size: bytes.len() as u64,
            },
            meta,
        }
    }
}

/// A constant in a device layout chosen by a kernel, possibly split into chunks (each within
/// the adapter's binding limit).
#[derive(Debug, Default)]
pub struct Packed {
    pub chunks: Vec<PackedChunk>,
}

impl Packed {
    pub fn bytes(&self) -> u64 {
        self.chunks
            .iter()
            .map(|c| match &c.resource {
                Resource::Buffer { size, .. } => *size,
                Resource::Texture { texture, .. } => {
                    let s = texture.size();
                    s.width as u64 * s.height as u64 * 16
                }
            })
            .sum()
    }

    /// A single storage buffer holding `bytes`.
    pub fn buffer(device: &Device, label: &str, bytes: &[u8]) -> Result<Packed> {
        let max = device.limits().max_buffer_size;
        if bytes.len() as u64 > max {
            return Err(Error::Limit {
                what: format!("constant '{label}'"),
                needed: bytes.len() as u64,
                limit: max,
                limit_name: "max_buffer_size",
                unit: "bytes",
            });
        }
        let buffer = device.upload(label, bytes, wgpu::BufferUsages::COPY_SRC);
        Ok(Packed {
            chunks: vec![PackedChunk {
                resource: Resource::Buffer {
                    buffer,
                    // The upload pads to whole u32 (f16 data of odd length).
                    size: (bytes.len() as u64).div_ceil(4).max(1) * 4,
                },
                meta: [0; 4],
            }],
        })
    }
}

/// A device texture layout in which an op can read one of its inputs when that input's producer
/// writes it so directly (see [`Op::texture_input`](super::Op::texture_input)): the producer's
/// buffer and the consumer's packing dispatch are then skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TexLayout {
    /// Names the layout; the ops that write and read it agree on what it and `meta` mean.
    pub kind: &'static str,
    pub width: u32,
    pub height: u32,
    pub format: TexFormat,
    /// Pool tag, as for [`Lower::scratch_texture`].
    pub tag: u64,
    /// Layout parameters (e.g. padding), op-defined.
    pub meta: [u32; 4],
}

/// A kernel argument, bound in order at @binding(0), (1), ...
#[derive(Debug)]
pub enum Arg {
    /// Whole value, read-only storage.
    Read(ValueId),
    /// Whole value, read-write storage (the op's output).
    Write(ValueId),
    /// Byte range of a value, read-only (for values larger than one binding).
    ReadRange {
        value: ValueId,
        offset: u64,
        size: u64,
    },
    /// Byte range of a value, read-write.
    WriteRange {
        value: ValueId,
        offset: u64,
        size: u64,
    },
    /// Op-private temporary created with [`Lower::scratch`].
    Scratch { id: usize, write: bool },
    /// Chunk `k` of a packed constant (storage buffer, or read-only storage texture).
    Packed(Arc<Packed>, usize),
    /// Op-private storage texture created with [`Lower::scratch_texture`].
    ScratchTexture { id: usize, write: bool },
    /// A small uniform block (shape parameters).
    Uniform(Vec<u8>),
}

pub(crate) struct DispatchDesc {
    pub(crate) kernel: Arc<Kernel>,
    pub(crate) args: Vec<Arg>,
    pub(crate) groups: [u32; 3],
    pub(crate) node: usize,
}

/// Lowering context handed to [`Op::gpu`](super::Op::gpu).
pub struct Lower<'a> {
    device: &'a Device,
    graph: &'a Graph,
    pub(crate) node: usize,
    pub(crate) dispatches: Vec<DispatchDesc>,
    /// (node, bytes) of each scratch buffer.
    pub(crate) scratch: Vec<(usize, u64)>,
    /// (width, height, format, layout tag) of each scratch texture.
    pub(crate) scratch_tex: Vec<(u32, u32, TexFormat, u64)>,
    /// For each scratch texture: the value it carries between nodes (`None`: node-private),
    /// and the first and last node using it.
    pub(crate) tex_span: Vec<(Option<ValueId>, usize, usize)>,
    /// Per value (by root): the (node, input index) pairs that read it.
    consumers: Vec<Vec<(usize, usize)>>,
    /// Kernels compiled while lowering (forgotten again if the driver rejects them).
    pub(crate) new_kernels: Vec<KernelKey>,
}

impl<'a> Lower<'a> {
    pub(crate) fn new(device: &'a Device, graph: &'a Graph) -> Self {
        Lower {
            device,
            graph,
            node: 0,
            dispatches: Vec::new(),
            scratch: Vec::new(),
            scratch_tex: Vec::new(),
            tex_span: Vec::new(),
            consumers: consumers(graph),
            new_kernels: Vec::new(),
        }
    }

    pub fn device(&self) -> &Device {
        self.device
    }
    pub fn info(&self, v: ValueId) -> &ValueInfo {
        self.graph.info(v)
    }
    pub fn graph(&self) -> &Graph {
        self.graph
    }
    /// The constant behind `v`, if it is one.
    pub fn constant(&self, v: ValueId) -> Option<&Arc<Constant>> {
        self.graph.as_constant(v)
    }

    /// A temporary buffer live only during this node.
    pub fn scratch(&mut self, bytes: u64) -> usize {
        self.scratch.push((self.node, bytes.max(4)));
        self.scratch.len() - 1
    }

    /// A temporary storage texture live only during this node. Textures of equal size, format
    /// and `layout` tag are shared across nodes (each node writes before it reads); give
    /// layouts whose never-written texels must stay zero their own tag.
    pub fn scratch_texture(
        &mut self,
        width: u32,
        height: u32,
        format: TexFormat,
        layout: u64,
    ) -> Result<usize> {
        let max = self.device.limits().max_texture_dimension_2d;
        if width > max || height > max || width == 0 || height == 0 {
            return Err(Error::Limit {
                what: format!("scratch texture of {width}x{height} texels"),
                needed: width.max(height) as u64,
                limit: max as u64,
                limit_name: "max_texture_dimension_2d",
                unit: "texels",
            });
        }
        self.scratch_tex.push((width, height, format, layout));
        self.tex_span.push((None, self.node, self.node));
        Ok(self.scratch_tex.len() - 1)
    }

    /// The texture layout `v` travels in from its producer to its consumer, when both agree on
    /// one: `v` is a node's single output, not a graph output, read by exactly one node, once,
    /// as its input 0 (not through a view); that node can read it as a texture
    /// ([`Op::texture_input`](super::Op::texture_input)) and the producer can write it so
    /// ([`Op::writes_texture`](super::Op::writes_texture)); and the policy allows it. Producer
    /// and consumer both ask while lowering and get the same answer.
    pub fn texture_edge(&self, v: ValueId) -> Option<TexLayout> {
        let g = self.graph;
        if !self.device.policy().fuse_layouts || g.root(v) != v {
            return None;
        }
        let Source::Node { node: a, .. } = g.values[v.index()].source else {
            return None;
        };
        if g.outputs.iter().any(|(_, o)| g.root(*o) == v) {
            return None;
        }
        let [(b, 0)] = self.consumers[v.index()][..] else {
            return None;
        };
        let (na, nb) = (&g.nodes[a], &g.nodes[b]);
        if nb.inputs[0] != v || nb.op.writes_input().is_some() || na.outputs.len() != 1 {
            return None;
        }
        let layout = nb.op.texture_input(self, &nb.inputs)?;
        na.op
            .writes_texture(self, &na.inputs, &layout)
            .then_some(layout)
    }

    /// The texture carrying `v` between its producer and consumer in `layout` (see
    /// [`Lower::texture_edge`]): the same texture for every call with `v`, live from the first
    /// caller's node to the last's.
    pub fn edge_texture(&mut self, v: ValueId, layout: &TexLayout) -> Result<usize> {
        let node = self.node;
        if let Some(i) = self.tex_span.iter().position(|s| s.0 == Some(v)) {
            self.tex_span[i].2 = node;
            return Ok(i);
        }
        let i = self.scratch_texture(layout.width, layout.height, layout.format, layout.tag)?;
        self.tex_span[i].0 = Some(v);
        Ok(i)
    }

    /// Records a dispatch of `shader` (specialised by `defines`) over `groups` workgroups.
    pub fn dispatch(
        &mut self,
        shader: &str,
        defines: &[(&str, String)],
        args: Vec<Arg>,
        groups: [u32; 3],
    ) -> Result<()> {
        let max = self.device.limits().max_compute_workgroups_per_dimension;
        if groups.iter().any(|&g| g > max) {
            return Err(Error::Limit {
                what: format!("{shader} dispatch {groups:?}"),
                needed: *groups.iter().max().unwrap() as u64,
                limit: max as u64,
                limit_name: "max_compute_workgroups_per_dimension",
                unit: "workgroups",
            });
        }
        if groups.contains(&0) {
            return Ok(());
        }
        let kinds: Vec<BindingKind> = args
            .iter()
            .map(|a| match a {
                Arg::Read(_) | Arg::ReadRange { .. } => BindingKind::StorageRead,
                Arg::Write(_) | Arg::WriteRange { .. } => BindingKind::StorageWrite,
                Arg::Scratch { write, .. } => {
                    if *write {
                        BindingKind::StorageWrite
                    } else {
                        BindingKind::StorageRead
                    }
                }
                Arg::Packed(p, k) => match p.chunks.get(*k).map(|c| &c.resource) {
                    Some(Resource::Texture { format, .. }) => BindingKind::TextureRead(*format),
                    _ => BindingKind::StorageRead,
                },
                Arg::ScratchTexture { id, write } => {
                    let f = self.scratch_tex[*id].2;
                    if *write {
                        BindingKind::TextureWrite(f)
                    } else {
                        BindingKind::TextureRead(f)
                    }
                }
                Arg::Uniform(_) => BindingKind::Uniform,
            })
            .collect();
        let (kernel, new) = self.device.kernel_new(shader, defines, &kinds)?;
        self.new_kernels.extend(new);
        self.dispatches.push(DispatchDesc {
            kernel,
            args,
            groups,
            node: self.node,
        });
        Ok(())
    }
}

/// Per value (by root): the (node, input index) pairs that read it.
fn consumers(g: &Graph) -> Vec<Vec<(usize, usize)>> {
    let mut c = vec![Vec::new(); g.values.len()];
    for (n, node) in g.nodes.iter().enumerate() {
        for (k, &i) in node.inputs.iter().enumerate() {
            c[g.root(i).index()].push((n, k));
        }
    }
    c
}

/// Splits `n` workgroups into a 2-D grid within the per-dimension limit. Kernels recover the
/// linear id as `wg.x + wg.y * num_workgroups.x` and return when it is `>= n`.
pub fn grid(device: &Device, n: u32) -> [u32; 3] {
    let max = device.limits().max_compute_workgroups_per_dimension.max(1);
    if n <= max {
        [n, 1, 1]
    } else {
        [max, n.div_ceil(max), 1]
    }
}

/// A 3-D grid of `groups` workgroups as dispatched: as is when every dimension is within the
/// per-dimension limit, else folded into a 2-D grid of the same count (see [`grid`]). Kernels
/// written for it recover their 3-D id from the linear one
/// `wg.x + nwg.x * (wg.y + nwg.y * wg.z)`, which is right for both shapes, and return when
/// it is `>= x·y·z`. An error when even the fold cannot hold the count.
pub fn grid3(device: &Device, groups: [u32; 3]) -> Result<[u32; 3]> {
    let max = device.limits().max_compute_workgroups_per_dimension.max(1);
    if groups.iter().all(|&g| g <= max) {
        return Ok(groups);
    }
    let total = groups
        .iter()
        .try_fold(1u64, |a, &g| a.checked_mul(g as u64))
        .filter(|&t| t <= (max as u64) * (max as u64))
        .ok_or_else(|| Error::Limit {
            what: format!("a dispatch of {groups:?} workgroups"),
            needed: groups.iter().map(|&g| g as u64).product(),
            limit: (max as u64) * (max as u64),
            limit_name: "max_compute_workgroups_per_dimension squared",
            unit: "workgroups",
        })?;
    Ok(grid(device, total as u32))
}

/// Builds a uniform block field by field (std140-compatible for scalars and vec4 arrays).
#[derive(Default, Debug, Clone)]
pub struct Params(Vec<u8>);

impl Params {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn f32(mut self, v: f32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// An `array<vec4<u32>, n_vec4>` (16-byte aligned), zero padded; extra values are an error
    /// (a kernel's uniform array is too small for this problem's rank).
    pub fn u32s(mut self, vals: &[u32], n_vec4: usize) -> Result<Self> {
        if vals.len() > n_vec4 * 4 {
            return Err(Error::Graph(format!(
                "{} values do not fit a uniform array of {} vec4",
                vals.len(),
                n_vec4
            )));
        }
        while !self.0.len().is_multiple_of(16) {
            self.0.push(0);
        }
        for i in 0..n_vec4 * 4 {
            let v = vals.get(i).copied().unwrap_or(0);
            self.0.extend_from_slice(&v.to_le_bytes());
        }
        Ok(self)
    }
    pub fn arg(self) -> Arg {
        Arg::Uniform(self.0)
    }
}
