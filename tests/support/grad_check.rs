//! The gradient check the task-stage tests share: which parameters a backward pass left
//! without gradient.
use candle_core::backprop::GradStore;
use candle_nn::VarMap;

/// Names (sorted) of the parameters in `varmap` whose gradient in `grads` is missing or all
/// zero; asserts the model has more than 30 parameters, so an empty answer means something.
pub fn params_without_gradient(varmap: &VarMap, grads: &GradStore) -> Vec<String> {
    let vars = varmap.data().lock().unwrap().clone();
    let mut missing: Vec<String> = vars
        .iter()
        .filter(|(_, v)| {
            grads.get(v.as_tensor()).is_none_or(|g| {
                g.abs()
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap()
                    == 0.0
            })
        })
        .map(|(n, _)| n.clone())
        .collect();
    missing.sort();
    assert!(vars.len() > 30, "{} parameters", vars.len());
    missing
}
