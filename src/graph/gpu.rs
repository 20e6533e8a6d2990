//! GPU executor. Compiling a graph lowers every node to dispatches, plans intermediate buffers by
//! liveness, uploads constants once (cached on the constant), and builds every bind group. A run
//! writes the inputs, records all dispatches into one compute pass, submits once and reads back
//! only the graph outputs.

use super::lower::{Arg, Lower, Packed, Resource};
use super::{
    plan_memory, DispatchTime, Graph, Interval, Outputs, PlanStats, Source, State, ValueId,
};
use crate::device::{map_read, Device, Kernel, TexFormat};
use crate::error::{Error, Result};
use crate::tensor::{DType, Tensor, ValueInfo};
use std::sync::Arc;

/// Where a value's bytes live.
#[derive(Clone, Debug)]
enum Loc {
    Pool(usize),
    /// Inside another value's buffer (root value index, byte offset): a concat slot.
    Placed(usize, u64),
    Input(usize),
    Const(Arc<Packed>),
    State(Arc<wgpu::Buffer>),
}

pub struct GpuPlan {
    device: Device,
    graph: Arc<Graph>,
    inputs: Vec<wgpu::Buffer>,
    dispatches: Vec<(Arc<Kernel>, wgpu::BindGroup, [u32; 3], usize)>,
    outputs: Vec<(wgpu::Buffer, u64, u64, ValueInfo, wgpu::Buffer)>,
    /// Set while readbacks are in flight: a run whose future was dropped mid-way leaves the
    /// staging buffers mapping, and the next run must unmap them first.
    maps_pending: bool,
    stats: PlanStats,
    // Keeps pooled buffers alive (bind groups hold references too).
    _pool: Vec<wgpu::Buffer>,
    _uniforms: Option<wgpu::Buffer>,
    _textures: Vec<wgpu::Texture>,
}

fn pad4(n: u64) -> u64 {
    n.div_ceil(4).max(1) * 4
}

impl GpuPlan {
    pub(crate) async fn new(device: &Device, graph: Arc<Graph>, states: &[&State]) -> Result<Self> {
        let dev = device.wgpu();
        // The guards never cross an await (they are per thread): push, build, pop, then wait.
        let scope_v = dev.push_error_scope(wgpu::ErrorFilter::Validation);
        let scope_m = dev.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let mut new_kernels = Vec::new();
        let result = Self::build(device, graph, states, &mut new_kernels);
        let (oom, val) = (scope_m.pop(), scope_v.pop());
        if let Some(e) = oom.await.or(val.await) {
            // A kernel the driver rejected must not be served from the cache again.
            device.forget_kernels(&new_kernels);
            return Err(Error::gpu("compiling graph", e));
        }
        result
    }

    fn build(
        device: &Device,
        graph: Arc<Graph>,
        states: &[&State],
        new_kernels: &mut Vec<crate::device::KernelKey>,
    ) -> Result<Self> {
        let g = &*graph;
        // 1. Lower nodes to dispatches.
        let mut lower = Lower::new(device, g);
        let lowered = (|| {
            for (n, node) in g.nodes.iter().enumerate() {
                lower.node = n;
                node.op.gpu(&mut lower, &node.inputs, &node.outputs)?;
            }
            Ok::<(), Error>(())
        })();
        new_kernels.append(&mut lower.new_kernels);
        lowered?;
        let Lower {
            mut dispatches,
            scratch,
            scratch_tex,
            tex_span,
            ..
        } = lower;
        // Concat slots: producers that can write straight into their concat's output.
        let align = device.limits().min_storage_buffer_offset_alignment as u64;
        let placed = place_in_slots(g, &dispatches, align);
        // The concat's copy of a placed input is gone: the producer wrote it in place.
        dispatches.retain(|d| {
            !d.args.iter().any(|a| {
                matches!(a, Arg::Read(x)
                    if placed[g.root(*x).index()].is_some_and(|(_, _, n)| n == d.node))
            })
        });
        // Scratch textures: node-private ones of one size, format and tag share a texture (each
        // node writes before it reads); one carrying a value between two nodes holds its
        // texture over that span, where nothing else may use it.
        type TexKey = (u32, u32, TexFormat, u64);
        struct PoolTex {
            key: TexKey,
            tex: wgpu::Texture,
            view: wgpu::TextureView,
            spans: Vec<(usize, usize)>,
            private: Vec<usize>,
        }
        let mut tex_pool: Vec<PoolTex> = Vec::new();
        let mut tex_of = Vec::with_capacity(scratch_tex.len());
        for (k, &key) in scratch_tex.iter().enumerate() {
            let (carried, a, b) = tex_span[k];
            let fits = |t: &PoolTex| {
                t.key == key
                    && t.spans.iter().all(|&(x, y)| y < a || x > b)
                    && (carried.is_none() || t.private.iter().all(|&n| n < a || n > b))
            };
            let i = match tex_pool.iter().position(fits) {
                Some(i) => i,
                None => {
                    let tex = device.wgpu().create_texture(&wgpu::TextureDescriptor {
                        label: Some("scratch"),
                        size: wgpu::Extent3d {
                            width: key.0,
                            height: key.1,
                            depth_or_array_layers: 1,
                        },
                        mip_level_count: 1,
                        sample_count: 1,
                        dimension: wgpu::TextureDimension::D2,
                        format: key.2.wgpu(),
                        usage: wgpu::TextureUsages::STORAGE_BINDING,
                        view_formats: &[],
                    });
                    let view = tex.create_view(&wgpu::TextureViewDescriptor::default());
                    tex_pool.push(PoolTex {
                        key,
                        tex,
                        view,
                        spans: Vec::new(),
                        private: Vec::new(),
                    });
                    tex_pool.len() - 1
                }
            };
            if carried.is_some() {
                tex_pool[i].spans.push((a, b));
            } else {
                tex_pool[i].private.push(a);
            }
            tex_of.push(i);
        }

        // 2. Liveness of node outputs (through aliases) and scratch.
        let nv = g.values.len();
        let mut last = vec![None::<usize>; nv];
        for (n, node) in g.nodes.iter().enumerate() {
            for &i in &node.inputs {
                last[g.root(i).index()] = Some(n);
            }
        }
        for (_, o) in &g.outputs {
            last[g.root(*o).index()] = Some(usize::MAX);
        }
        // A slot's buffer lives from its first producer to the last use of any part of it.
        let mut first = vec![None::<usize>; nv];
        for (i, p) in placed.iter().enumerate() {
            if let (Some((t, _, _)), Source::Node { node, .. }) = (p, &g.values[i].source) {
                first[*t] = Some(first[*t].map_or(*node, |f: usize| f.min(*node)));
                last[*t] = last[*t].max(last[i]);
            }
        }
        // Values no dispatch binds (carried between nodes in a texture instead) get no buffer.
        let mut needs_buffer = vec![false; nv];
        for d in &dispatches {
            for a in &d.args {
                if let Arg::Read(v)
                | Arg::Write(v)
                | Arg::ReadRange { value: v, .. }
                | Arg::WriteRange { value: v, .. } = a
                {
                    needs_buffer[g.root(*v).index()] = true;
                }
            }
        }
        for (_, o) in &g.outputs {
            needs_buffer[g.root(*o).index()] = true;
        }
        for p in placed.iter().flatten() {
            needs_buffer[p.0] = true;
        }
        let mut reqs = Vec::new();
        let mut req_value = Vec::new();
        for (i, v) in g.values.iter().enumerate() {
            if placed[i].is_some() || !needs_buffer[i] {
                continue;
            }
            if let Source::Node { node, .. } = v.source {
                let f = first[i].map_or(node, |f| f.min(node));
                reqs.push(Interval {
                    bytes: pad4(v.info.bytes() as u64),
                    first: f,
                    last: last[i].unwrap_or(node).max(node),
                });
                req_value.push(Some(i));
            }
        }
        for &(node, bytes) in &scratch {
            reqs.push(Interval {
                bytes: pad4(bytes),
                first: node,
                last: node,
            });
            req_value.push(None);
        }
        let mplan = plan_memory(&reqs);
        let unplanned: u64 = reqs.iter().map(|r| r.bytes).sum();
        let usage = wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_SRC
            | wgpu::BufferUsages::COPY_DST;
        let max_buf = device.limits().max_buffer_size;
        device.reserve("intermediate buffers", mplan.total_bytes())?;
        let mut pool = Vec::new();
        for (b, &size) in mplan.buffer_sizes.iter().enumerate() {
            if size > max_buf {
                return Err(Error::Limit {
                    what: format!("intermediate buffer {b}"),
                    needed: size,
                    limit: max_buf,
                    limit_name: "max_buffer_size",
                    unit: "bytes",
                });
            }
            pool.push(device.wgpu().create_buffer(&wgpu::BufferDescriptor {
                label: Some("pool"),
                size,
                usage,
                mapped_at_creation: false,
            }));
        }
        let mut scratch_buf = vec![0usize; scratch.len()];
        let mut loc: Vec<Option<Loc>> = vec![None; nv];
        let mut k_scratch = 0;
        for (r, v) in req_value.iter().enumerate() {
            match v {
                Some(i) => loc[*i] = Some(Loc::Pool(mplan.assignment[r])),
                None => {
                    scratch_buf[k_scratch] = mplan.assignment[r];
                    k_scratch += 1;
                }
            }
        }

        for (i, p) in placed.iter().enumerate() {
            if let Some((t, off, _)) = p {
                loc[i] = Some(Loc::Placed(*t, *off));
            }
        }

        // 3. Inputs, states, constants.
        let mut inputs = Vec::new();
        for (k, &id) in g.inputs.iter().enumerate() {
            let info = &g.values[id.index()].info;
            inputs.push(device.wgpu().create_buffer(&wgpu::BufferDescriptor {
                label: Some(&g.values[id.index()].name),
                size: pad4(info.bytes() as u64),
                usage,
                mapped_at_creation: false,
            }));
            loc[id.index()] = Some(Loc::Input(k));
        }
        for (&id, s) in g.states.iter().zip(states) {
            match s {
                State::Gpu { buffer, .. } => loc[id.index()] = Some(Loc::State(buffer.clone())),
                State::Cpu(_) => {
                    return Err(Error::Graph("a CPU state was given to a GPU plan".into()))
                }
            }
        }
        // Constants are uploaded in their raw layout only when some arg binds them as values.
        let needs_raw = |id: usize| {
            dispatches.iter().any(|d| {
                d.args.iter().any(|a| match a {
                    Arg::Read(v) | Arg::ReadRange { value: v, .. } => g.root(*v).index() == id,
                    _ => false,
                })
            }) || g.outputs.iter().any(|(_, o)| g.root(*o).index() == id)
        };
        for (i, v) in g.values.iter().enumerate() {
            if let Source::Constant(c) = &v.source {
                if needs_raw(i) {
                    if c.tensor().dtype() == DType::Q8 {
                        return Err(Error::Graph(format!(
                            "q8 weight '{}' is bound raw by a kernel that cannot read q8",
                            c.name()
                        )));
                    }
                    let p = c.packed(device, "raw", |t| {
                        Packed::buffer(device, c.name(), t.as_bytes())
                    })?;
                    loc[i] = Some(Loc::Const(p));
                }
            }
        }

        // 4. Uniforms, packed into one buffer at aligned offsets.
        let ualign = device.limits().min_uniform_buffer_offset_alignment.max(16) as u64;
        let mut ubytes: Vec<u8> = Vec::new();
        let mut uoffsets = Vec::new();
        for d in &dispatches {
            for a in &d.args {
                if let Arg::Uniform(b) = a {
                    let off = (ubytes.len() as u64).div_ceil(ualign) * ualign;
                    ubytes.resize(off as usize, 0);
                    ubytes.extend_from_slice(b);
                    let padded = (ubytes.len() as u64).div_ceil(16) * 16;
                    ubytes.resize(padded as usize, 0);
                    uoffsets.push((off, (b.len() as u64).div_ceil(16).max(1) * 16));
                }
            }
        }
        let uniforms = if ubytes.is_empty() {
            None
        } else {
            let b = device.wgpu().create_buffer(&wgpu::BufferDescriptor {
                label: Some("uniforms"),
                size: ubytes.len() as u64,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            device.queue().write_buffer(&b, 0, &ubytes);
            Some(b)
        };

        // 5. Bind groups.
        let max_bind = device.max_binding();
        let resolve = |v: ValueId| -> Result<(&wgpu::Buffer, u64)> {
            let mut root = g.root(v).index();
            let mut base = 0;
            while let Some(Loc::Placed(t, off)) = loc[root].as_ref() {
                root = *t;
                base += off;
            }
            match loc[root].as_ref() {
                Some(Loc::Pool(b)) => Ok((&pool[*b], base)),
                Some(Loc::Placed(..)) => unreachable!("followed above"),
                Some(Loc::Input(k)) => Ok((&inputs[*k], 0)),
                Some(Loc::State(b)) => Ok((b.as_ref(), 0)),
                Some(Loc::Const(p)) => match &p.chunks[0].resource {
                    Resource::Buffer { buffer, .. } => Ok((buffer, 0)),
                    Resource::Texture { .. } => Err(Error::Graph("constant is a texture".into())),
                },
                None => Err(Error::Graph(format!(
                    "value '{}' has no buffer",
                    g.values[root].name
                ))),
            }
        };
        let mut bound = Vec::with_capacity(dispatches.len());
        let mut u_k = 0;
        for d in &dispatches {
            let op_name = g.nodes[d.node].op.name();
            let mut entries = Vec::with_capacity(d.args.len());
            for (bi, a) in d.args.iter().enumerate() {
                let check = |what: &str, size: u64| -> Result<()> {
                    if size > max_bind {
                        Err(Error::Limit {
                            what: format!("{op_name}: binding of {what}"),
                            needed: size,
                            limit: max_bind,
                            limit_name: "max_storage_buffer_binding_size",
                            unit: "bytes",
                        })
                    } else {
                        Ok(())
                    }
                };
                let resource = match a {
                    Arg::Read(v) | Arg::Write(v) => {
                        let info = g.info(*v);
                        let size = pad4(info.bytes() as u64);
                        check(&g.values[v.index()].name, size)?;
                        let (buf, off) = resolve(*v)?;
                        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                            buffer: buf,
                            offset: off,
                            size: wgpu::BufferSize::new(size),
                        })
                    }
                    Arg::ReadRange {
                        value,
                        offset,
                        size,
                    }
                    | Arg::WriteRange {
                        value,
                        offset,
                        size,
                    } => {
                        check(&g.values[value.index()].name, *size)?;
                        let (buf, off) = resolve(*value)?;
                        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                            buffer: buf,
                            offset: off + offset,
                            size: wgpu::BufferSize::new(pad4(*size)),
                        })
                    }
                    Arg::Scratch { id, .. } => {
                        let b = &pool[scratch_buf[*id]];
                        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                            buffer: b,
                            offset: 0,
                            size: wgpu::BufferSize::new(pad4(scratch[*id].1)),
                        })
                    }
                    Arg::Packed(p, k) => {
                        let chunk = p.chunks.get(*k).ok_or_else(|| {
                            Error::Graph(format!("{op_name}: packed chunk {k} out of range"))
                        })?;
                        match &chunk.resource {
                            Resource::Buffer { buffer, size } => {
                                check("packed weight", pad4(*size))?;
                                wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                                    buffer,
                                    offset: 0,
                                    size: wgpu::BufferSize::new(pad4(*size)),
                                })
                            }
                            Resource::Texture { view, .. } => {
                                wgpu::BindingResource::TextureView(view)
                            }
                        }
                    }
                    Arg::ScratchTexture { id, .. } => {
                        wgpu::BindingResource::TextureView(&tex_pool[tex_of[*id]].view)
                    }
                    Arg::Uniform(_) => {
                        let (off, size) = uoffsets[u_k];
                        u_k += 1;
                        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                            buffer: uniforms.as_ref().unwrap(),
                            offset: off,
                            size: wgpu::BufferSize::new(size),
                        })
                    }
                };
                entries.push(wgpu::BindGroupEntry {
                    binding: bi as u32,
                    resource,
                });
            }
            let bg = device.wgpu().create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(&d.kernel.name),
                layout: &d.kernel.layout,
                entries: &entries,
            });
            bound.push((d.kernel.clone(), bg, d.groups, d.node));
        }

        // 6. Readback staging for outputs.
        let mut outputs = Vec::new();
        let mut io_bytes: u64 = inputs.iter().map(|b| b.size()).sum();
        for (_, o) in &g.outputs {
            let info = g.info(*o).clone();
            let (buf, off) = resolve(*o)?;
            let size = pad4(info.bytes() as u64);
            let staging = device.wgpu().create_buffer(&wgpu::BufferDescriptor {
                label: Some("staging"),
                size,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            io_bytes += size;
            outputs.push((buf.clone(), off, size, info, staging));
        }
        io_bytes += uniforms.as_ref().map_or(0, |u| u.size());
        let constant_bytes = g
            .values
            .iter()
            .filter_map(|v| match &v.source {
                Source::Constant(c) => Some(c.device_bytes()),
                _ => None,
            })
            .sum();
        let mut kernels: Vec<String> = Vec::new();
        for (k, ..) in &bound {
            if !kernels.contains(&k.name) {
                kernels.push(k.name.clone());
            }
        }
        let stats = PlanStats {
            dispatches: bound.len(),
            intermediate_bytes: mplan.total_bytes(),
            unplanned_bytes: unplanned,
            buffers: pool.len(),
            io_bytes,
            constant_bytes,
            kernels,
        };
        Ok(GpuPlan {
            device: device.clone(),
            graph: graph.clone(),
            inputs,
            dispatches: bound,
            outputs,
            maps_pending: false,
            stats,
            _pool: pool,
            _uniforms: uniforms,
            _textures: tex_pool.into_iter().map(|t| t.tex).collect(),
        })
    }

    fn encode(&self, timestamps: Option<&wgpu::QuerySet>) -> wgpu::CommandBuffer {
        let mut enc = self
            .device
            .wgpu()
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("forward"),
                timestamp_writes: None,
            });
            for (i, (k, bg, groups, _)) in self.dispatches.iter().enumerate() {
                if let Some(q) = timestamps {
                    pass.write_timestamp(q, 2 * i as u32);
                }
                pass.set_pipeline(&k.pipeline);
                pass.set_bind_group(0, bg, &[]);
                pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
                if let Some(q) = timestamps {
                    pass.write_timestamp(q, 2 * i as u32 + 1);
                }
            }
        }
        for (buf, off, size, _, staging) in &self.outputs {
            enc.copy_buffer_to_buffer(buf, *off, staging, 0, *size);
        }
        enc.finish()
    }

    fn write_inputs(&self, inputs: &[&Tensor]) -> Result<()> {
        self.graph.check_feeds(inputs)?;
        for (buf, t) in self.inputs.iter().zip(inputs) {
            let bytes = t.as_bytes();
            if bytes.len() % 4 == 0 {
                self.device.queue().write_buffer(buf, 0, bytes);
            } else {
                let mut b = bytes.to_vec();
                b.resize(bytes.len().div_ceil(4) * 4, 0);
                self.device.queue().write_buffer(buf, 0, &b);
            }
        }
        Ok(())
    }

    /// Writes the inputs and submits `cmds` under error scopes; errors of either are returned.
    async fn submit(
        &mut self,
        inputs: &[&Tensor],
        cmds: impl FnOnce(&Self) -> Vec<wgpu::CommandBuffer>,
    ) -> Result<()> {
        if self.maps_pending {
            for (.., staging) in &self.outputs {
                staging.unmap();
            }
            self.maps_pending = false;
        }
        let dev = self.device.wgpu();
        let scope_v = dev.push_error_scope(wgpu::ErrorFilter::Validation);
        let scope_m = dev.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let r = self.write_inputs(inputs).map(|()| {
            let c = cmds(self);
            self.device.queue().submit(c);
        });
        let (oom, val) = (scope_m.pop(), scope_v.pop());
        if let Some(e) = oom.await.or(val.await) {
            return Err(Error::gpu("run", e));
        }
        r
    }

    /// Reads every output back (all maps requested at once, then awaited).
    async fn read_outputs(&mut self) -> Result<Outputs> {
        if self.outputs.is_empty() {
            self.device.flush().await?;
        }
        self.maps_pending = true;
        let device = &self.device;
        let pending: Vec<_> = self
            .outputs
            .iter()
            .map(|(_, _, size, _, staging)| map_read(device, staging, *size))
            .collect();
        let mut tensors = Vec::with_capacity(pending.len());
        for (p, (_, _, _, info, _)) in pending.into_iter().zip(&self.outputs) {
            let bytes = p.await?;
            tensors.push(Tensor::from_bytes(
                &info.shape,
                info.dtype,
                &bytes[..info.bytes()],
            )?);
        }
        self.maps_pending = false;
        if let Some(e) = self.device.take_errors() {
            return Err(Error::gpu("run", e));
        }
        let names = self.graph.outputs.iter().map(|(n, _)| n.clone()).collect();
        Ok(Outputs::new(names, tensors))
    }

    pub(crate) async fn run(&mut self, inputs: &[&Tensor]) -> Result<Outputs> {
        self.submit(inputs, |p| vec![p.encode(None)]).await?;
        self.read_outputs().await
    }

    pub(crate) async fn profile(
        &mut self,
        inputs: &[&Tensor],
    ) -> Result<Option<Vec<DispatchTime>>> {
        if !self
            .device
            .features()
            .contains(wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES)
            || self.dispatches.is_empty()
        {
            return Ok(None);
        }
        let n = (self.dispatches.len() * 2) as u32;
        let dev = self.device.wgpu().clone();
        let qs = dev.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("profile"),
            ty: wgpu::QueryType::Timestamp,
            count: n,
        });
        let resolve = dev.create_buffer(&wgpu::BufferDescriptor {
            label: Some("ts"),
            size: n as u64 * 8,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let staging = dev.create_buffer(&wgpu::BufferDescriptor {
            label: Some("ts-staging"),
            size: n as u64 * 8,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        self.submit(inputs, |p| {
            let cmd = p.encode(Some(&qs));
            let mut enc =
                dev.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
            enc.resolve_query_set(&qs, 0..n, &resolve, 0);
            enc.copy_buffer_to_buffer(&resolve, 0, &staging, 0, n as u64 * 8);
            vec![cmd, enc.finish()]
        })
        .await?;
        let _ = self.read_outputs().await?;
        let raw = map_read(&self.device, &staging, n as u64 * 8).await?;
        let ts: &[u64] = bytemuck::cast_slice(&raw);
        let period = self.device.queue().get_timestamp_period() as f64;
        Ok(Some(
            self.dispatches
                .iter()
                .enumerate()
                .map(|(i, (k, _, _, node))| DispatchTime {
                    op: self.graph.nodes[*node].op.name().to_string(),
                    kernel: k.name.clone(),
                    nanos: ts[2 * i + 1].saturating_sub(ts[2 * i]) as f64 * period,
                })
                .collect(),
        ))
    }

    pub(crate) fn stats(&self) -> PlanStats {
        self.stats.clone()
    }

    pub(crate) fn graph(&self) -> &Arc<Graph> {
        &self.graph
    }
}

/// Concat inputs that can live inside the concat's output buffer: per value, (output value,
/// byte offset, concat node). A value qualifies when it is a node output used once by a concat
/// whose output is its inputs side by side ([`Op::input_slots`]), is not a graph output, is not
/// itself a concat output with slots, sits at an offset the adapter can bind, and its
/// producer's dispatches read nothing of that same output buffer (WebGPU forbids reading and
/// writing one buffer in a dispatch).
fn place_in_slots(
    g: &Graph,
    dispatches: &[super::lower::DispatchDesc],
    align: u64,
) -> Vec<Option<(usize, u64, usize)>> {
    let nv = g.values.len();
    let mut placed: Vec<Option<(usize, u64, usize)>> = vec![None; nv];
    let is_output = |i: usize| g.outputs.iter().any(|(_, o)| g.root(*o).index() == i);
    let infos =
        |n: usize| -> Vec<&ValueInfo> { g.nodes[n].inputs.iter().map(|&i| g.info(i)).collect() };
    // Each single-output node's slots, computed once.
    let slots_of: Vec<Option<Vec<usize>>> = (0..g.nodes.len())
        .map(|n| {
            (g.nodes[n].outputs.len() == 1)
                .then(|| g.nodes[n].op.input_slots(&infos(n)))
                .flatten()
        })
        .collect();
    for (n, node) in g.nodes.iter().enumerate() {
        let Some(slots) = &slots_of[n] else {
            continue;
        };
        let target = node.outputs[0].index();
        for (&inp, &slot) in node.inputs.iter().zip(slots) {
            let i = inp.index();
            let Source::Node { node: p, .. } = g.values[i].source else {
                continue;
            };
            let off = (slot * g.info(inp).dtype.size()) as u64;
            if g.root(inp).index() != i
                || node.inputs.iter().filter(|&&x| x == inp).count() != 1
                || is_output(i)
                || slots_of[p].is_some()
                || placed[i].is_some()
                || !off.is_multiple_of(align.max(1))
                || !g.info(inp).bytes().is_multiple_of(4)
            {
                continue;
            }
            placed[i] = Some((target, off, n));
        }
    }
    // Drop placements whose producer reads the slot buffer (the output or any value placed in
    // it), until none does.
    loop {
        let mut changed = false;
        for i in 0..nv {
            let Some((t, _, _)) = placed[i] else { continue };
            let Source::Node { node: p, .. } = g.values[i].source else {
                continue;
            };
            let in_group = |x: ValueId| {
                let r = g.root(x).index();
                r == t || placed[r].is_some_and(|(t2, _, _)| t2 == t)
            };
            let reads = dispatches.iter().filter(|d| d.node == p).any(|d| {
                d.args.iter().any(|a| match a {
                    Arg::Read(x) | Arg::ReadRange { value: x, .. } => in_group(*x),
                    _ => false,
                })
            });
            if reads {
                placed[i] = None;
                changed = true;
            }
        }
        if !changed {
            return placed;
        }
    }
}
