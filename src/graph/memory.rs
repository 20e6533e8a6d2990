//! Memory planning: values whose lifetimes do not overlap share a buffer.
//!
//! Greedy in execution order: a value takes the smallest free buffer that fits, else grows the
//! largest free one, else opens a new buffer. A buffer is free again once every reader of its
//! current value has run, so a node's outputs never alias that node's inputs.

/// One allocation request: `bytes` live from node `first` through node `last` (inclusive).
#[derive(Clone, Copy, Debug)]
pub struct Interval {
    pub bytes: u64,
    pub first: usize,
    pub last: usize,
}

/// Result of [`plan_memory`].
#[derive(Clone, Debug, Default)]
pub struct MemoryPlan {
    /// Buffer index for each interval, in request order.
    pub assignment: Vec<usize>,
    /// Size of each buffer.
    pub buffer_sizes: Vec<u64>,
}

impl MemoryPlan {
    pub fn total_bytes(&self) -> u64 {
        self.buffer_sizes.iter().sum()
    }
}

pub fn plan_memory(requests: &[Interval]) -> MemoryPlan {
    let mut order: Vec<usize> = (0..requests.len()).collect();
    order.sort_by_key(|&i| (requests[i].first, std::cmp::Reverse(requests[i].bytes)));
    let mut plan = MemoryPlan {
        assignment: vec![usize::MAX; requests.len()],
        buffer_sizes: Vec::new(),
    };
    // For each buffer: the last node that reads its current occupant.
    let mut busy_until: Vec<usize> = Vec::new();
    for &i in &order {
        let r = requests[i];
        let free: Vec<usize> = (0..plan.buffer_sizes.len())
            .filter(|&b| busy_until[b] < r.first)
            .collect();
        let fit = free
            .iter()
            .copied()
            .filter(|&b| plan.buffer_sizes[b] >= r.bytes)
            .min_by_key(|&b| plan.buffer_sizes[b]);
        let b = match fit {
            Some(b) => b,
            None => match free.iter().copied().max_by_key(|&b| plan.buffer_sizes[b]) {
                Some(b) => {
                    plan.buffer_sizes[b] = r.bytes;
                    b
                }
                None => {
                    plan.buffer_sizes.push(r.bytes);
                    busy_until.push(0);
                    plan.buffer_sizes.len() - 1
                }
            },
        };
        busy_until[b] = r.last;
        plan.assignment[i] = b;
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overlaps(a: &Interval, b: &Interval) -> bool {
        a.first <= b.last && b.first <= a.last
    }

    #[test]
    fn chain_reuses_two_buffers() {
        // x0 -> x1 -> x2 -> x3: each lives from its producer to its single consumer.
        let reqs: Vec<Interval> = (0..4)
            .map(|i| Interval {
                bytes: 100,
                first: i,
                last: i + 1,
            })
            .collect();
        let p = plan_memory(&reqs);
        assert_eq!(p.buffer_sizes.len(), 2, "{p:?}");
        assert_eq!(p.total_bytes(), 200);
    }

    #[test]
    fn never_aliases_live_values() {
        let mut seed = 7u64;
        let mut rnd = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize
        };
        for _ in 0..50 {
            let reqs: Vec<Interval> = (0..40)
                .map(|_| {
                    let first = rnd() % 30;
                    Interval {
                        bytes: 1 + (rnd() % 1000) as u64,
                        first,
                        last: first + rnd() % 10,
                    }
                })
                .collect();
            let p = plan_memory(&reqs);
            for i in 0..reqs.len() {
                assert!(p.buffer_sizes[p.assignment[i]] >= reqs[i].bytes);
                for j in 0..i {
                    if p.assignment[i] == p.assignment[j] {
                        assert!(!overlaps(&reqs[i], &reqs[j]), "{:?} {:?}", reqs[i], reqs[j]);
                    }
                }
            }
            let unplanned: u64 = reqs.iter().map(|r| r.bytes).sum();
            assert!(p.total_bytes() <= unplanned);
        }
    }
}
