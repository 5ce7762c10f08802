//! Registration of the built-in envs.

use crate::registry::Registry;

pub(crate) fn register_all(r: &mut Registry) {
    crate::games::twenty48::register(r);
    crate::games::sudoku::register(r);
    crate::games::math::register(r);
    crate::games::strategy::register(r);
    crate::games::vision::register(r);
}
