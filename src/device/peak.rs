//! The adapter's FMA throughput (`fma_peak.wgsl`), so kernels can be reported as a share of
//! what this adapter can do.

use super::{BindingKind, Device};
use crate::error::Result;
use web_time::Instant;

impl Device {
    /// Measured FMA peak in GFLOP/s (best of `reps` timed runs after one warm-up).
    pub async fn fma_peak_gflops(&self, reps: usize) -> Result<f64> {
        let kernel = self.kernel(
            "fma_peak.wgsl",
            &[],
            &[BindingKind::StorageWrite, BindingKind::Uniform],
        )?;
        // Enough invocations to fill any adapter; enough iterations to dwarf launch overhead.
        let groups: u32 = if self.is_cpu() { 256 } else { 4096 };
        let iters: u32 = if self.is_cpu() { 4096 } else { 16384 };
        let invocations = groups as u64 * 64;
        let dev = self.wgpu();
        let out = dev.create_buffer(&wgpu::BufferDescriptor {
            label: Some("peak"),
            size: invocations * 16,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        let params = dev.create_buffer(&wgpu::BufferDescriptor {
            label: Some("peak-params"),
            size: 16,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        self.queue()
            .write_buffer(&params, 0, bytemuck::cast_slice(&[iters, 0, 0, 0]));
        let bg = dev.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &kernel.layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: out.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: params.as_entire_binding(),
                },
            ],
        });
        let mut best = f64::MAX;
        for rep in 0..=reps.max(1) {
            let mut enc =
                dev.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
            {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
                pass.set_pipeline(&kernel.pipeline);
                pass.set_bind_group(0, &bg, &[]);
                pass.dispatch_workgroups(groups, 1, 1);
            }
            let t0 = Instant::now();
            self.queue().submit([enc.finish()]);
            super::readback::work_done(self).await?;
            // The first run is a warm-up.
            if rep > 0 {
                best = best.min(t0.elapsed().as_secs_f64());
            }
        }
        let flops = invocations as f64 * iters as f64 * 8.0 * 4.0 * 2.0;
        Ok(flops / best / 1e9)
    }
}
