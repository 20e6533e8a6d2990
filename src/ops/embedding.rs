//! Embedding gather: rows of a [vocab, dim] table picked by u32 ids. Tables larger than one
//! storage binding (GPT-2's 50257 x 768 f32 is 154 MB) are bound in row ranges.

use super::{expect_inputs, groups_for, shapes};
use crate::error::{Error, Result};
use crate::graph::{Arg, Graph, Lower, Op, Packed, PackedChunk, Params, ValueId};
use crate::tensor::{DType, Data, Tensor, ValueInfo, Q8_BLOCK};

#[derive(Debug, Clone)]
pub struct Embedding;

impl Op for Embedding {
    fn name(&self) -> &'static str {
        "embedding"
    }

    /// Inputs: table [vocab, dim] f32, f16 or q8 (a constant), ids [...] u32. Output [..., dim].
    fn infer(&self, inputs: &[&ValueInfo]) -> Result<Vec<ValueInfo>> {
        expect_inputs("embedding", inputs, 2)?;
        let (t, ids) = (inputs[0], inputs[1]);
        if t.rank() != 2
            || !matches!(t.dtype, DType::F32 | DType::F16 | DType::Q8)
            || ids.dtype != DType::U32
        {
            return Err(Error::shape(
                "embedding",
                "expects an f32, f16 or q8 [vocab, dim] table and u32 ids",
                &shapes(inputs),
            ));
        }
        let mut out = ids.shape.clone();
        out.push(t.shape[1]);
        Ok(vec![ValueInfo::f32(&out)])
    }

    fn cpu(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let (t, ids) = (inputs[0], inputs[1]);
        let (vocab, dim) = (t.shape()[0], t.shape()[1]);
        let tv = t.f32_cow();
        let mut y = Vec::with_capacity(ids.numel() * dim);
        for &id in ids.as_u32()? {
            let id = id as usize;
            if id >= vocab {
                return Err(Error::InvalidArgument(format!(
                    "embedding: id {id} out of range for a table of {vocab} rows"
                )));
            }
            y.extend_from_slice(&tv[id * dim..(id + 1) * dim]);
        }
        let mut shape = ids.shape().to_vec();
        shape.push(dim);
        Ok(vec![Tensor::from_f32(&shape, y)?])
    }

    fn gpu(&self, cx: &mut Lower<'_>, inputs: &[ValueId], outputs: &[ValueId]) -> Result<()> {
        let (vocab, dim) = {
            let s = &cx.info(inputs[0]).shape;
            (s[0], s[1])
        };
        let tokens = cx.info(inputs[1]).numel();
        if cx.info(inputs[0]).dtype == DType::Q8 {
            return lower_q8(cx, inputs, outputs, (vocab, dim, tokens));
        }
        let half = cx.info(inputs[0]).dtype == DType::F16;
        let row_bytes = (dim * cx.info(inputs[0]).dtype.size()) as u64;
        let table_bytes = (vocab as u64 * row_bytes).div_ceil(4) * 4;
        // Chunk rows so that each range fits a binding and starts at an aligned offset.
        let align = cx.device().limits().min_storage_buffer_offset_alignment as u64;
        let mut rows_per = (cx.device().max_binding() / row_bytes).max(1);
        let step = align / gcd(align, row_bytes);
        rows_per = (rows_per / step).max(1) * step;
        let groups = groups_for(cx, tokens * dim, 256);
        let mut row0 = 0u64;
        while row0 < vocab as u64 {
            let rows = rows_per.min(vocab as u64 - row0);
            let table = if row0 == 0 && rows == vocab as u64 {
                Arg::Read(inputs[0])
            } else {
                // Sizes rounded to whole u32 (the upload pads the buffer likewise).
                Arg::ReadRange {
                    value: inputs[0],
                    offset: row0 * row_bytes,
                    size: ((rows * row_bytes).div_ceil(4) * 4).min(table_bytes - row0 * row_bytes),
                }
            };
            cx.dispatch(
                "embedding.wgsl",
                &[("TH", u32::from(half).to_string())],
                vec![
                    table,
                    Arg::Read(inputs[1]),
                    Arg::Write(outputs[0]),
                    Params::new()
                        .u32(tokens as u32)
                        .u32(dim as u32)
                        .u32(row0 as u32)
                        .u32(rows as u32)
                        .u32(vocab as u32)
                        .arg(),
                ],
                groups,
            )?;
            row0 += rows;
        }
        Ok(())
    }
}

/// The q8 gather: the table (a constant) is packed in row chunks, each one buffer holding
/// its int8 values (4 per u32) followed by its f32 scales; one dispatch per chunk.
fn lower_q8(
    cx: &mut Lower<'_>,
    inputs: &[ValueId],
    outputs: &[ValueId],
    (vocab, dim, tokens): (usize, usize, usize),
) -> Result<()> {
    let c = cx.constant(inputs[0]).cloned().ok_or_else(|| {
        Error::shape(
            "embedding",
            "a q8 table must be a constant (weights)",
            &[&cx.info(inputs[0]).shape],
        )
    })?;
    let per_row = dim.div_ceil(Q8_BLOCK);
    let row_bytes = (dim + 4 * per_row) as u64;
    let rows_per = ((cx.device().max_binding() / row_bytes) as usize).clamp(1, vocab.max(1));
    let dev = cx.device().clone();
    let packed = c.packed(cx.device(), "embedding/q8", |t| {
        let Data::Q8(d) = t.data() else {
            return Err(Error::Graph("embedding: q8 table without q8 data".into()));
        };
        let mut chunks = Vec::new();
        let mut r0 = 0;
        while r0 < vocab {
            let rows = rows_per.min(vocab - r0);
            let q = &d.q[r0 * dim..(r0 + rows) * dim];
            let mut bytes: Vec<u8> = bytemuck::cast_slice(q).to_vec();
            bytes.resize(bytes.len().div_ceil(4) * 4, 0);
            bytes.extend_from_slice(bytemuck::cast_slice(
                &d.scales[r0 * per_row..(r0 + rows) * per_row],
            ));
            chunks.push(PackedChunk::upload(
                &dev,
                c.name(),
                &bytes,
                [r0 as u32, rows as u32, 0, 0],
            ));
            r0 += rows;
        }
        Ok(Packed { chunks })
    })?;
    let groups = groups_for(cx, tokens * dim, 256);
    for (i, ch) in packed.chunks.iter().enumerate() {
        cx.dispatch(
            "embedding.wgsl",
            &[("TH", "2".into())],
            vec![
                Arg::Packed(packed.clone(), i),
                Arg::Read(inputs[1]),
                Arg::Write(outputs[0]),
                Params::new()
                    .u32(tokens as u32)
                    .u32(dim as u32)
                    .u32(ch.meta[0])
                    .u32(ch.meta[1])
                    .u32(vocab as u32)
                    .arg(),
            ],
            groups,
        )?;
    }
    Ok(())
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl Graph {
    /// `table[ids]`: ids are u32, the table f32 or f16 [vocab, dim] (output f32).
    pub fn embedding(&mut self, table: ValueId, ids: ValueId) -> Result<ValueId> {
        self.node1(Embedding, &[table, ids])
    }
}
