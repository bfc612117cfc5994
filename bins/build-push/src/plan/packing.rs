//! Which large files share a layer when there are more of them than the layer budget allows.
//! Only sizes and path order count, so the same files give the same layers, and the same
//! digests, from a directory or from the Hub, on every run.

use std::ops::Range;

/// The layers for files of `sizes` (in path order) when at most `layers` are allowed: ranges
/// of consecutive files, one per layer. Every file keeps a layer of its own while the budget
/// allows (layers are pulled in parallel); beyond it, the files are cut into exactly `layers`
/// runs of about equal size, and, under `max_layer_size`, of at most that size.
/// `None`: no packing keeps every layer under `max_layer_size`.
pub fn pack(
    sizes: &[u64],
    layers: usize,
    max_layer_size: Option<u64>,
) -> Option<Vec<Range<usize>>> {
    let layers = layers.max(1);
    if sizes.len() <= layers {
        let fits = max_layer_size.is_none_or(|max| sizes.iter().all(|&s| s <= max));
        return fits.then(|| (0..sizes.len()).map(|i| i..i + 1).collect());
    }
    let balanced = balanced_cuts(sizes, layers);
    let Some(max) = max_layer_size else {
        return Some(balanced);
    };
    if balanced.iter().all(|r| total(sizes, r) <= max) {
        return Some(balanced);
    }
    filled_cuts(sizes, layers, max)
}

fn total(sizes: &[u64], range: &Range<usize>) -> u64 {
    sizes[range.clone()].iter().sum()
}

/// Cuts where the running total is nearest to each k/`layers` of the whole, every run
/// keeping at least one file: runs of about equal size, each within one file of the mean.
fn balanced_cuts(sizes: &[u64], layers: usize) -> Vec<Range<usize>> {
    let whole: u128 = sizes.iter().map(|&s| u128::from(s)).sum();
    // running[i]: the bytes of the files before i.
    let running: Vec<u128> = std::iter::once(0)
        .chain(sizes.iter().scan(0u128, |sum, &s| {
            *sum += u128::from(s);
            Some(*sum)
        }))
        .collect();
    let n = sizes.len();
    let mut cuts = Vec::with_capacity(layers);
    let mut start = 0;
    for k in 1..layers {
        let ideal = whole * k as u128 / layers as u128;
        // The cut after `start`, leaving a file for each run still to come.
        let (lowest, highest) = (start + 1, n - (layers - k));
        let cut = (lowest..=highest)
            .min_by_key(|&i| running[i].abs_diff(ideal))
            .unwrap_or(lowest);
        cuts.push(start..cut);
        start = cut;
    }
    cuts.push(start..n);
    cuts
}

/// Runs filled up to `max` bytes in path order, each leaving a file for every run still to
/// come, so that all `layers` are used. `None` when `max` would need more runs than that.
fn filled_cuts(sizes: &[u64], layers: usize, max: u64) -> Option<Vec<Range<usize>>> {
    let n = sizes.len();
    let mut cuts = Vec::with_capacity(layers);
    let mut start = 0;
    for k in 1..=layers {
        if start == n || sizes[start] > max {
            return None;
        }
        let last_run = k == layers;
        let mut end = start + 1;
        let mut bytes = sizes[start];
        while end < n
            && (last_run || n - end > layers - k)
            && bytes.saturating_add(sizes[end]) <= max
        {
            bytes += sizes[end];
            end += 1;
        }
        cuts.push(start..end);
        start = end;
    }
    (start == n).then_some(cuts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sums(sizes: &[u64], cuts: &[Range<usize>]) -> Vec<u64> {
        cuts.iter().map(|r| total(sizes, r)).collect()
    }

    fn assert_partition(n: usize, cuts: &[Range<usize>]) {
        let mut next = 0;
        for r in cuts {
            assert_eq!(r.start, next, "{cuts:?}");
            assert!(r.end > r.start, "an empty run: {cuts:?}");
            next = r.end;
        }
        assert_eq!(next, n, "{cuts:?}");
    }

    #[test]
    fn within_the_budget_every_file_keeps_its_layer() {
        let sizes = [5, 1, 9];
        assert_eq!(pack(&sizes, 3, None), Some(vec![0..1, 1..2, 2..3]));
        assert_eq!(pack(&sizes, 100, Some(9)), Some(vec![0..1, 1..2, 2..3]));
        assert_eq!(pack(&sizes, 100, Some(8)), None, "a file above the limit");
    }

    #[test]
    fn equal_shards_beyond_the_budget_spread_over_every_layer() {
        // 200 shards into 98 layers: 4 layers of three shards and 94 of two.
        let sizes = vec![5u64 << 30; 200];
        let cuts = pack(&sizes, 98, None).unwrap();
        assert_partition(200, &cuts);
        assert_eq!(cuts.len(), 98);
        let files: Vec<usize> = cuts.iter().map(|r| r.len()).collect();
        assert_eq!(files.iter().filter(|&&f| f == 3).count(), 4, "{files:?}");
        assert_eq!(files.iter().filter(|&&f| f == 2).count(), 94, "{files:?}");
    }

    #[test]
    fn uneven_sizes_stay_within_a_file_of_the_mean() {
        let sizes: Vec<u64> = (0..163).map(|i| 1000 + (i * 7919 % 500)).collect();
        let cuts = pack(&sizes, 60, None).unwrap();
        assert_partition(163, &cuts);
        assert_eq!(cuts.len(), 60);
        let mean = sizes.iter().sum::<u64>() / 60;
        let largest_file = *sizes.iter().max().unwrap();
        for s in sums(&sizes, &cuts) {
            assert!(s.abs_diff(mean) <= largest_file, "{s} vs mean {mean}");
        }
    }

    #[test]
    fn the_same_sizes_always_give_the_same_layers() {
        let sizes: Vec<u64> = (0..50).map(|i| (i * 31 % 17 + 1) << 20).collect();
        assert_eq!(pack(&sizes, 7, None), pack(&sizes, 7, None));
        assert_eq!(
            pack(&sizes, 7, Some(200 << 20)),
            pack(&sizes, 7, Some(200 << 20))
        );
    }

    #[test]
    fn a_size_limit_refills_the_runs_that_would_pass_it() {
        // Balanced cuts of [6, 1, 1, 6] into 2 give 7 + 7; a limit of 6 needs 3 runs.
        assert_eq!(pack(&[6, 1, 1, 6], 2, Some(7)), Some(vec![0..2, 2..4]));
        assert_eq!(pack(&[6, 1, 1, 6], 2, Some(6)), None);
        assert_eq!(
            pack(&[6, 1, 1, 6], 3, Some(6)),
            Some(vec![0..1, 1..3, 3..4])
        );
        // One large file among small ones: balanced cuts would put it with others.
        let sizes = [1, 1, 1, 1, 8, 1, 1, 1];
        let cuts = pack(&sizes, 3, Some(8)).unwrap();
        assert_partition(sizes.len(), &cuts);
        assert!(sums(&sizes, &cuts).iter().all(|&s| s <= 8), "{cuts:?}");
    }
}
