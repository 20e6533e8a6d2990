// Workgroup reductions when the workgroup is exactly one subgroup (WG == subgroup size):
// no workgroup memory, no barriers.
fn wg_sum(v: f32, li: u32) -> f32 {
    return subgroupAdd(v);
}

fn wg_max(v: f32, li: u32) -> f32 {
    return subgroupMax(v);
}
