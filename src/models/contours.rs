//! Outer contours of binary masks, as OpenCV's `findContours(mask, RETR_EXTERNAL,
//! CHAIN_APPROX_SIMPLE)` returns them (what ultralytics traces for `masks.xy`): Suzuki and Abe's
//! border following over the mask with a one-pixel zero frame, 8-connected components, holes
//! and anything inside them skipped, each contour starting at its top-left pixel and keeping
//! only the points where the chain direction changes; the list comes last-found first, as
//! OpenCV returns it.

/// (dx, dy) of the 8 chain codes (y down): 0 = right, then counter-clockwise on screen.
const DELTAS: [(isize, isize); 8] = [
    (1, 0),
    (1, -1),
    (0, -1),
    (-1, -1),
    (-1, 0),
    (-1, 1),
    (0, 1),
    (1, 1),
];

/// A traced border pixel whose right neighbour is outside (the component's right edge).
const RIGHT_EDGE: i8 = -126;
/// Any other traced border pixel.
const BORDER: i8 = 2;

/// The outer contours of `mask` (`w`×`h`, row-major, nonzero = inside), each a list of (x, y)
/// pixel coordinates, in OpenCV's order and with its points.
pub fn external_contours(mask: &[u8], w: usize, h: usize) -> Vec<Vec<(i32, i32)>> {
    assert_eq!(mask.len(), w * h, "mask size");
    // The mask inside a zero frame: pixel (x, y) at (x + 1, y + 1).
    let (pw, ph) = (w + 2, h + 2);
    let mut img = vec![0i8; pw * ph];
    for y in 0..h {
        for x in 0..w {
            img[(y + 1) * pw + x + 1] = (mask[y * w + x] != 0) as i8;
        }
    }
    let mut out = Vec::new();
    for y in 1..ph - 1 {
        let row = y * pw;
        // The last marked pixel of this row so far (starts at the frame, which is 0).
        let mut lnbd = row;
        let mut prev = 0i8;
        let mut x = 1;
        while x < pw {
            let p = img[row + x];
            if p == prev {
                x += 1;
                continue;
            }
            if prev == 0 && p == 1 && img[lnbd] <= 0 {
                // A new outer border, not inside a component already seen on this row.
                out.push(follow(&mut img, pw, row + x));
                // OpenCV resumes after the start pixel with lnbd unchanged.
                prev = img[row + x];
                x += 1;
                continue;
            }
            prev = p;
            if p != 0 && p != 1 {
                lnbd = row + x;
            }
            x += 1;
        }
    }
    // OpenCV lists the contours last found first.
    out.reverse();
    out
}

/// Follows the outer border starting at `start` (an unmarked pixel whose left neighbour is 0),
/// marking it, and returns its CHAIN_APPROX_SIMPLE points.
fn follow(img: &mut [i8], pw: usize, start: usize) -> Vec<(i32, i32)> {
    let step = pw as isize;
    let off: [isize; 16] = std::array::from_fn(|i| {
        let (dx, dy) = DELTAS[i % 8];
        dy * step + dx
    });
    let at = |i: usize, s: usize| (i as isize + off[s]) as usize;
    let mut pt = ((start % pw) as i32 - 1, (start / pw) as i32 - 1);
    let mut pts = Vec::new();
    // First neighbour, searching clockwise from the left neighbour's successor.
    let s_end = 4usize;
    let mut s = s_end;
    let mut i1;
    loop {
        s = (s + 7) & 7;
        i1 = at(start, s);
        if img[i1] != 0 || s == s_end {
            break;
        }
    }
    if img[i1] == 0 {
        // A single pixel.
        img[start] = RIGHT_EDGE;
        pts.push(pt);
        return pts;
    }
    let (mut i3, mut prev_s) = (start, s ^ 4);
    loop {
        let s_end = s;
        let mut i4 = i3;
        // Counter-clockwise from the direction after the one we came from.
        while s < 15 {
            s += 1;
            i4 = at(i3, s);
            if img[i4] != 0 {
                break;
            }
        }
        s &= 7;
        // The right neighbour was examined and is outside: a right-edge pixel.
        if s.wrapping_sub(1) < s_end {
            img[i3] = RIGHT_EDGE;
        } else if img[i3] == 1 {
            img[i3] = BORDER;
        }
        if s != prev_s {
            pts.push(pt);
            prev_s = s;
        }
        pt.0 += DELTAS[s].0 as i32;
        pt.1 += DELTAS[s].1 as i32;
        if i4 == start && i3 == i1 {
            break;
        }
        i3 = i4;
        s = (s + 4) & 7;
    }
    pts
}

#[cfg(test)]
mod tests {
    use super::external_contours;

    fn mask(rows: &[&str]) -> (Vec<u8>, usize, usize) {
        let w = rows[0].len();
        let m = rows
            .iter()
            .flat_map(|r| r.bytes().map(|b| (b == b'#') as u8))
            .collect();
        (m, w, rows.len())
    }

    #[test]
    fn squares_points_and_holes() {
        // A filled 3x3 square: its 4 corners, counter-clockwise from the top-left on screen.
        let (m, w, h) = mask(&[".....", ".###.", ".###.", ".###.", "....."]);
        assert_eq!(
            external_contours(&m, w, h),
            vec![vec![(1, 1), (1, 3), (3, 3), (3, 1)]]
        );
        // One pixel; a ring (its hole and the pixel inside it are not external).
        let (m, w, h) = mask(&[
            "#......", "..#####", "..#...#", "..#.#.#", "..#...#", "..#####",
        ]);
        let c = external_contours(&m, w, h);
        assert_eq!(c.len(), 2, "{c:?}");
        assert_eq!(c[0], vec![(2, 1), (2, 5), (6, 5), (6, 1)]);
        assert_eq!(c[1], vec![(0, 0)]);
        // Touching the image border: the frame is outside.
        let (m, w, h) = mask(&["##", "##"]);
        assert_eq!(
            external_contours(&m, w, h),
            vec![vec![(0, 0), (0, 1), (1, 1), (1, 0)]]
        );
    }
}
