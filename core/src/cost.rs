//! The price model: AWS on-demand prices, stated once in `core/prices.json` (which
//! `dev/bench.py` reads too), and what a saga's writes cost under it.

use serde::Deserialize;
use std::sync::LazyLock;

/// Prices in US dollars per unit (the fields this crate uses; the file has `make bench`'s too).
#[derive(Deserialize, Debug, Clone, Copy, PartialEq)]
pub struct Prices {
    /// DynamoDB on-demand, per write request unit.
    pub dynamodb_write_unit: f64,
    /// DynamoDB on-demand, per read request unit.
    pub dynamodb_read_unit: f64,
}

/// The prices of `core/prices.json`, compiled in.
pub static PRICES: LazyLock<Prices> = LazyLock::new(|| {
    serde_json::from_str(include_str!("../prices.json")).expect("core/prices.json is valid")
});

/// What `write_units` of DynamoDB write capacity cost, in US dollars.
pub fn write_cost_usd(write_units: f64) -> f64 {
    write_units * PRICES.dynamodb_write_unit
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_million_write_units_cost_the_documented_price() {
        assert!((write_cost_usd(1e6) - 0.625).abs() < 1e-9);
        assert!((PRICES.dynamodb_read_unit * 1e6 - 0.125).abs() < 1e-9);
    }
}
