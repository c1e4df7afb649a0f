use libc::size_t;
use nettle_sys::{
    nettle_yarrow256_init, nettle_yarrow256_is_seeded, nettle_yarrow256_random,
    nettle_yarrow256_seed, yarrow256_ctx,
};
use std::mem::zeroed;
use std::os::raw::c_void;
use std::ptr;

use super::Random;

/// Yarrow is a secure CRNG developed by Kelsey et.al.
///
/// casegate: default instances draw every byte from the operating system's
/// generator (`getrandom`) instead of seeding a Yarrow from it; instances made
/// with [`Yarrow::from_seed`] are Yarrow as before. Seeding a Yarrow runs its
/// slow reseed (1,500 SHA-256 iterations, ~0.2 ms), and sequoia's nettle
/// backend makes a default instance for each random value it needs: each v4
/// signature's salt, each ECDH key, each RSA blinding. Sequoia's RustCrypto
/// backend reads the OS generator in the same places. See
/// `vendor/nettle/CASEGATE.md`.
pub struct Yarrow {
    context: yarrow256_ctx,
    /// casegate: a default instance; `context` is then never used.
    from_os: bool,
}

impl Yarrow {
    /// Create a new CRNG instance for `seed`.
    pub fn from_seed(seed: &[u8]) -> Yarrow {
        unsafe {
            let mut ctx = zeroed();

            nettle_yarrow256_init(&mut ctx as *mut _, 0, ptr::null_mut());
            nettle_yarrow256_seed(
                &mut ctx as *mut _,
                seed.len(),
                seed.as_ptr(),
            );

            Yarrow { context: ctx, from_os: false }
        }
    }
}

impl Random for Yarrow {
    // casegate: the whole instance, so that `random_impl` knows its kind.
    unsafe fn context(&mut self) -> *mut c_void {
        self as *mut Yarrow as *mut c_void
    }

    unsafe extern "C" fn random_impl(
        ctx: *mut c_void, length: size_t, dst: *mut u8,
    ) {
        let rng = &mut *(ctx as *mut Yarrow);
        if rng.from_os {
            if length > 0 {
                let dst = std::slice::from_raw_parts_mut(dst, length);
                if getrandom::fill(dst).is_err() {
                    // No unwinding out of an `extern "C"` function, and never
                    // bytes that are not random: stop here.
                    std::process::abort();
                }
            }
            return;
        }
        assert_eq!(nettle_yarrow256_is_seeded(&mut rng.context as *mut _), 1);
        nettle_yarrow256_random(&mut rng.context as *mut _, length, dst);
    }
}

impl Default for Yarrow {
    fn default() -> Self {
        // casegate: fails here, where upstream's seeding failed, when the OS
        // has no generator to give.
        let mut probe = [0u8; 1];
        if let Err(e) = getrandom::fill(&mut probe) {
            panic!("Failed to initialize random generator: {}", e);
        }
        Yarrow { context: unsafe { zeroed() }, from_os: true }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_seeded() {
        let mut rng1 = Yarrow::default();
        let mut rng2 = Yarrow::default();
        let mut buf1 = vec![0u8; 100];
        let mut buf2 = vec![0u8; 100];
        let zero = vec![0u8; 100];

        rng1.random(&mut buf1);
        rng2.random(&mut buf2);

        assert_ne!(buf1, buf2);
        assert_ne!(buf1, zero);
        assert_ne!(buf1, zero);
    }

    // casegate: a seeded instance is still Yarrow, byte for byte (the output of
    // nettle-rs 7.5.0 as published, before the change).
    #[test]
    fn fixed_seed_known_answer() {
        let seed =
            &b"aaaaaaaaaaaaaaaaaabbbbbbbbbbbbbbbbbbbcccccccccccccccccccdddd"[..];
        let mut rng = Yarrow::from_seed(seed);
        let mut first = [0u8; 48];
        let mut then = [0u8; 16];
        rng.random(&mut first);
        rng.random(&mut then);
        assert_eq!(hex(&first), "05754bfb26cc41bb912a42cc25d159f0e874784501b101bf\
                                 d1fae3815ab806cc45c07a5089d0231b56d8fd4a8770906e");
        assert_eq!(hex(&then), "65bc829a62957e8e77458308a86b1208");
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{:02x}", b)).collect()
    }

    // casegate: default instances, also through the C callback nettle's own
    // functions call: no two draws alike, none all zeros.
    #[test]
    fn default_instances_draw_from_the_os() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..1000 {
            let mut rng = Yarrow::default();
            let mut buf = [0u8; 32];
            if i % 2 == 0 {
                rng.random(&mut buf);
            } else {
                unsafe {
                    let ctx = rng.context();
                    <Yarrow as Random>::random_impl(
                        ctx,
                        buf.len(),
                        buf.as_mut_ptr(),
                    );
                }
            }
            assert_ne!(buf, [0u8; 32]);
            assert!(seen.insert(buf), "draw {} repeated an earlier one", i);
        }
        // A draw of nothing writes nothing, even through a null pointer.
        unsafe {
            let mut rng = Yarrow::default();
            let ctx = rng.context();
            <Yarrow as Random>::random_impl(ctx, 0, std::ptr::null_mut());
        }
    }

    #[test]
    fn fixed_seed() {
        let seed =
            &b"aaaaaaaaaaaaaaaaaabbbbbbbbbbbbbbbbbbbcccccccccccccccccccdddd"[..];
        let mut rng1 = Yarrow::from_seed(seed);
        let mut rng2 = Yarrow::from_seed(seed);
        let mut buf1 = vec![0u8; 100];
        let mut buf2 = vec![0u8; 100];
        let zero = vec![0u8; 100];

        rng1.random(&mut buf1);
        rng2.random(&mut buf2);

        assert_eq!(buf1, buf2);
        assert_ne!(buf1, zero);
    }

    #[test]
    fn random_inteface() {
        let seed =
            &b"aaaaaaaaaaaaaaaaaabbbbbbbbbbbbbbbbbbbcccccccccccccccccccdddd"[..];
        let mut rng1 = Yarrow::from_seed(seed);
        let mut rng2 = Yarrow::from_seed(seed);
        let mut buf1 = vec![0u8; 100];
        let mut buf2 = vec![0u8; 100];
        let zero = vec![0u8; 100];

        rng1.random(&mut buf1);

        unsafe {
            let ctx = rng2.context();
            <Yarrow as Random>::random_impl(ctx, buf2.len(), buf2.as_mut_ptr());
        }

        assert_eq!(buf1, buf2);
        assert_ne!(buf1, zero);
    }
}
