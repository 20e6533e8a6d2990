//! Writes a block of rows into a persistent cache (a graph state) at a run-time offset: the
//! KV-cache update of autoregressive decoding. `cache[b, past + i, :] = src[b, i, col..col+w]`.

use super::{expect_inputs, groups_for, shapes};
use crate::error::{Error, Result};
use crate::graph::{Arg, Graph, Lower, Op, Params, ValueId};
use crate::tensor::{DType, Tensor, ValueInfo};

#[derive(Debug, Clone)]
pub struct KvWrite {
    /// First column of the block in `src`.
    pub col: usize,
}

impl KvWrite {
    /// (batch, rows, width, src_stride, cap)
    fn check(&self, inputs: &[&ValueInfo]) -> Result<(usize, usize, usize, usize, usize)> {
        expect_inputs("kv_write", inputs, 3)?;
        let (cache, src, pos) = (inputs[0], inputs[1], inputs[2]);
        let bad = |m: &str| Err(Error::shape("kv_write", m.to_string(), &shapes(inputs)));
        if cache.rank() != 3
            || src.rank() != 3
            || cache.dtype != DType::F32
            || src.dtype != DType::F32
        {
            return bad("cache and src must be f32 [batch, rows, width]");
        }
        if pos.shape != [1] || pos.dtype != DType::U32 {
            return bad("past must be u32 [1]");
        }
        let (b, cap, w) = (cache.shape[0], cache.shape[1], cache.shape[2]);
        if src.shape[0] != b || self.col + w > src.shape[2] || src.shape[1] > cap {
            return bad("src block does not fit the cache");
        }
        Ok((b, src.shape[1], w, src.shape[2], cap))
    }
}

impl Op for KvWrite {
    fn name(&self) -> &'static str {
        "kv_write"
    }

    fn infer(&self, inputs: &[&ValueInfo]) -> Result<Vec<ValueInfo>> {
        self.check(inputs)?;
        Ok(vec![])
    }

    fn cpu(&self, _inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        Err(Error::Graph("kv_write runs in place".into()))
    }

    fn writes_input(&self) -> Option<usize> {
        Some(0)
    }

    fn cpu_write(&self, cache: &mut Tensor, inputs: &[&Tensor]) -> Result<()> {
        let (src, pos) = (inputs[0], inputs[1]);
        let (cinfo, sinfo, pinfo) = (cache.info(), src.info(), pos.info());
        let (b, rows, w, stride, cap) = self.check(&[&cinfo, &sinfo, &pinfo])?;
        let past = pos.as_u32()?[0] as usize;
        let s = src.as_f32()?.to_vec();
        let c = cache.as_f32_mut()?;
        for bi in 0..b {
            for r in 0..rows {
                let row = past + r;
                if row >= cap {
                    continue;
                }
                let dst = (bi * cap + row) * w;
                let from = (bi * rows + r) * stride + self.col;
                c[dst..dst + w].copy_from_slice(&s[from..from + w]);
            }
        }
        Ok(())
    }

    fn gpu(&self, cx: &mut Lower<'_>, inputs: &[ValueId], _outputs: &[ValueId]) -> Result<()> {
        let infos: Vec<ValueInfo> = inputs.iter().map(|&i| cx.info(i).clone()).collect();
        let refs: Vec<&ValueInfo> = infos.iter().collect();
        let (b, rows, w, stride, cap) = self.check(&refs)?;
        let groups = groups_for(cx, b * rows * w, 256);
        cx.dispatch(
            "kv_write.wgsl",
            &[],
            vec![
                Arg::Write(inputs[0]),
                Arg::Read(inputs[1]),
                Arg::Read(inputs[2]),
                Params::new()
                    .u32(b as u32)
                    .u32(rows as u32)
                    .u32(w as u32)
                    .u32(stride as u32)
                    .u32(self.col as u32)
                    .u32(cap as u32)
                    .arg(),
            ],
            groups,
        )
    }
}

impl Graph {
    /// `cache[:, past..past+rows, :] = src[:, :, col..col+width]` (cache must be a state).
    pub fn kv_write(
        &mut self,
        cache: ValueId,
        src: ValueId,
        col: usize,
        past: ValueId,
    ) -> Result<()> {
        self.node(KvWrite { col }, &[cache, src, past])?;
        Ok(())
    }
}
