mod common;

use common::small_model;
use spikeword::model::{Model, ModelError, METADATA_KEY};
use std::collections::HashMap;

#[test]
fn round_trip_preserves_card_and_weights() {
    let m = small_model(1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    m.save(&path).unwrap();
    let back = Model::load(&path).unwrap();
    assert_eq!(back.card, m.card);
    assert_eq!(back.weights, m.weights);
    // And it runs identically.
    let x: Vec<f32> = (0..40 * 30).map(|i| (i as f32 * 0.37).sin()).collect();
    let (mut a, mut b) = (m.network(), back.network());
    for f in x.chunks(40) {
        assert_eq!(a.step(f), b.step(f));
    }
}

/// (name, shape, little-endian f32 bytes) of one tensor.
type RawTensor = (String, Vec<usize>, Vec<u8>);

/// Sets the card field at `path` (object keys, or array indices written as numbers).
fn set_path(card: &mut serde_json::Value, path: &[&str], value: serde_json::Value) {
    let mut v = card;
    for k in &path[..path.len() - 1] {
        v = match k.parse::<usize>() {
            Ok(i) => &mut v[i],
            Err(_) => &mut v[*k],
        };
    }
    v[*path.last().unwrap()] = value;
}

/// Re-serialises with a replaced card JSON and/or tensors.
fn rewrite(m: &Model, card: serde_json::Value, tensors: Option<Vec<RawTensor>>) -> Vec<u8> {
    let tensors = tensors.unwrap_or_else(|| {
        m.weights
            .tensors()
            .into_iter()
            .zip(spikeword::network::Weights::shapes(&m.card.architecture))
            .map(|((n, v), (_, s))| (n, s.to_vec(), v.iter().flat_map(|x| x.to_le_bytes()).collect()))
            .collect()
    });
    let views: Vec<(String, safetensors::tensor::TensorView)> =
        tensors.iter().map(|(n, s, b)| (n.clone(), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b).unwrap())).collect();
    let meta: HashMap<String, String> = [(METADATA_KEY.to_string(), card.to_string())].into();
    safetensors::tensor::serialize(views, &Some(meta)).unwrap()
}

fn card_json(m: &Model) -> serde_json::Value {
    serde_json::to_value(&m.card).unwrap()
}

#[test]
fn truncated_file_is_reported_as_corrupt() {
    let bytes = small_model(1).to_bytes().unwrap();
    for cut in [0, 5, 100, bytes.len() / 2, bytes.len() - 1] {
        match Model::from_bytes(&bytes[..cut]) {
            Err(ModelError::Corrupt(_)) => {}
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
}

#[test]
fn wrong_shape_names_the_tensor() {
    let m = small_model(1);
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = m
        .weights
        .tensors()
        .into_iter()
        .zip(spikeword::network::Weights::shapes(&m.card.architecture))
        .map(|((n, v), (_, s))| (n, s.to_vec(), v.iter().flat_map(|x| x.to_le_bytes()).collect()))
        .collect();
    let t = tensors.iter_mut().find(|t| t.0 == "layers.1.w_x").unwrap();
    t.1 = vec![t.1[1], t.1[0]];
    let bytes = rewrite(&m, card_json(&m), Some(tensors));
    match Model::from_bytes(&bytes) {
        Err(ModelError::WrongShape { name, .. }) => assert_eq!(name, "layers.1.w_x"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn nan_weight_is_rejected_with_its_position() {
    let mut m = small_model(1);
    m.weights.layers[0].w_m[17] = f32::NAN;
    match Model::from_bytes(&m.to_bytes().unwrap()) {
        Err(ModelError::NonFinite { name, index, .. }) => {
            assert_eq!(name, "layers.0.w_m");
            assert_eq!(index, 17);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_version_is_rejected() {
    let m = small_model(1);
    let mut card = card_json(&m);
    card["format_version"] = 99.into();
    match Model::from_bytes(&rewrite(&m, card, None)) {
        Err(ModelError::UnsupportedVersion { found: 99 }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn absurd_dimensions_are_rejected_before_allocation() {
    let m = small_model(1);
    for (path, value) in [
        (vec!["architecture", "layers", "0", "units"], serde_json::json!(1_000_000_000usize)),
        (vec!["architecture", "layers", "0", "order"], serde_json::json!(0)),
        (vec!["architecture", "layers", "1", "theta"], serde_json::json!(-3.0)),
        (vec!["frontend", "n_fft"], serde_json::json!(1usize << 40)),
        (vec!["architecture", "dt"], serde_json::json!(0.0)),
    ] {
        let mut card = card_json(&m);
        set_path(&mut card, &path, value.clone());
        match Model::from_bytes(&rewrite(&m, card, None)) {
            Err(ModelError::AbsurdDimension { .. }) => {}
            other => panic!("{path:?} = {value}: {other:?}"),
        }
    }
}

#[test]
fn missing_metadata_and_missing_tensor_are_told_apart() {
    let m = small_model(1);
    let mut bytes_no_meta = {
        let b: Vec<u8> = vec![0; 4];
        let v = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![1], &b).unwrap();
        safetensors::tensor::serialize(vec![("x".to_string(), v)], &None).unwrap()
    };
    assert!(matches!(Model::from_bytes(&bytes_no_meta), Err(ModelError::MissingMetadata)));
    bytes_no_meta.clear();
    let tensors: Vec<RawTensor> = m
        .weights
        .tensors()
        .into_iter()
        .zip(spikeword::network::Weights::shapes(&m.card.architecture))
        .filter(|((n, _), _)| n != "readout.bias")
        .map(|((n, v), (_, s))| (n, s.to_vec(), v.iter().flat_map(|x| x.to_le_bytes()).collect()))
        .collect();
    match Model::from_bytes(&rewrite(&m, card_json(&m), Some(tensors))) {
        Err(ModelError::MissingTensor(n)) => assert_eq!(n, "readout.bias"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_missing_file_names_the_path() {
    let err = Model::load(std::path::Path::new("/nonexistent/model.safetensors")).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/model.safetensors"), "{err}");
}

#[test]
fn delta_steps_are_validated_and_optional() {
    let m = small_model(1);
    for (path, value, field) in [
        (vec!["architecture", "layers", "1", "memory_delta"], serde_json::json!(-0.5), "layer 1 memory_delta"),
        (vec!["architecture", "layers", "0", "memory_delta"], serde_json::json!(1e9), "layer 0 memory_delta"),
        (vec!["architecture", "input_delta"], serde_json::json!(1e-9), "input_delta"),
        (vec!["architecture", "input_delta"], serde_json::json!(f32::MAX), "input_delta"),
    ] {
        let mut card = card_json(&m);
        set_path(&mut card, &path, value.clone());
        match Model::from_bytes(&rewrite(&m, card, None)) {
            Err(e @ ModelError::AbsurdDimension { .. }) => assert!(e.to_string().contains(field), "{e}"),
            other => panic!("{path:?} = {value}: {other:?}"),
        }
    }
    // A card written before delta coding existed has no such fields: it loads with the
    // codings off and runs exactly as before.
    let mut card = card_json(&m);
    card["architecture"].as_object_mut().unwrap().remove("input_delta");
    for l in card["architecture"]["layers"].as_array_mut().unwrap() {
        l.as_object_mut().unwrap().remove("memory_delta");
    }
    assert!(!card.to_string().contains("delta"));
    let old = Model::from_bytes(&rewrite(&m, card, None)).unwrap();
    assert_eq!(old.card.architecture.input_delta, 0.0);
    assert!(old.card.architecture.layers.iter().all(|l| l.memory_delta == 0.0));
    // And a valid step survives the round trip.
    let mut coded = small_model(1);
    coded.card.architecture.input_delta = 0.25;
    coded.card.architecture.layers[1].memory_delta = 0.5;
    let back = Model::from_bytes(&coded.to_bytes().unwrap()).unwrap();
    assert_eq!(back.card.architecture, coded.card.architecture);
}
