//! Mode of operation for block ciphers.

mod mode;
pub use self::mode::Mode;

mod cbc;
pub use self::cbc::Cbc;

mod ctr;
pub use self::ctr::Ctr;

mod cfb;
pub use self::cfb::Cfb;
