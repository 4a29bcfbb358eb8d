//! Settings structs whose `Default` is their seed values.
//!
//! WHY a macro: each window, threshold and policy struct (hysteresis, resolver, SLOs, runtime
//! timing, delivery, restarts, retention, snapshots) had its fields in one place and their seed
//! values in a hand-written `Default` further down; [`seeded!`] writes each seed beside its
//! field and derives the `Default` from them.

/// Declares a struct with `field: Type = seed,` fields and a `Default` giving every seed.
/// Attributes and doc comments, on the struct and on each field, pass through.
macro_rules! seeded {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $($(#[$fmeta:meta])* $fvis:vis $field:ident: $ty:ty = $seed:expr),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis struct $name {
            $($(#[$fmeta])* $fvis $field: $ty,)+
        }

        impl Default for $name {
            fn default() -> Self {
                $name { $($field: $seed,)+ }
            }
        }
    };
}
pub(crate) use seeded;
