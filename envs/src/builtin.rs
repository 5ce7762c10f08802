//! The built-in envs' registry.

use crate::registry::Registry;

impl Registry {
    /// The registry with every built-in env (`envs::games`).
    pub fn builtin() -> Self {
        let mut r = Self::new();
        crate::games::twenty48::register(&mut r);
        crate::games::sudoku::register(&mut r);
        crate::games::math::register(&mut r);
        crate::games::strategy::register(&mut r);
        crate::games::vision::register(&mut r);
        crate::games::echo::register(&mut r);
        r
    }
}
