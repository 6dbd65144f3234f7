//! A library user's own stage kind, registered once and then listed by a TOML file like a
//! built-in one (with named instances of it), its options checked with the file's key.
use std::path::PathBuf;

use serde::Deserialize;
use zhishi::doc::{Document, Label};
use zhishi::pipeline::Pipeline;
use zhishi::stages::registry::{options, OptionsError, StageContext, StageInfo, StageKind};
use zhishi::stages::{Field, Stage, StageError};

/// `[length]` options.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LengthOptions {
    /// Texts longer than this are labelled "long".
    #[serde(default)]
    max: usize,
}

/// Labels a text "short" or "long".
struct LengthStage {
    max: usize,
    instance: String,
}

impl Stage for LengthStage {
    fn name(&self) -> &str {
        &self.instance
    }

    fn process(&self, docs: &mut [Document]) -> Result<(), StageError> {
        for doc in docs {
            let long = doc.text.chars().count() > self.max;
            doc.labels.push(Label {
                label: if long { "long" } else { "short" }.into(),
                score: 1.0,
                source: Some(self.instance.clone()),
                evidence: None,
            });
        }
        Ok(())
    }
}

struct LengthKind;

impl StageKind for LengthKind {
    fn info(&self) -> StageInfo {
        StageInfo {
            name: "length",
            summary: "labels a text short or long",
            reads: &[],
            produces: &[Field::Labels],
            needs_kg: false,
        }
    }

    fn requires(&self, _: Option<&toml::Value>) -> Result<Vec<Field>, OptionsError> {
        Ok(Vec::new())
    }

    fn check(
        &self,
        table: Option<&mut toml::Value>,
        _: &dyn Fn(&str, &std::path::Path) -> Result<PathBuf, OptionsError>,
    ) -> Result<(), OptionsError> {
        options::<LengthOptions>("length", table.as_deref()).map(drop)
    }

    fn build(
        &self,
        table: Option<&toml::Value>,
        ctx: &StageContext<'_>,
    ) -> Result<Box<dyn Stage>, StageError> {
        let o: LengthOptions =
            options("length", table).map_err(|e| StageError::new(ctx.instance, e))?;
        Ok(Box::new(LengthStage {
            max: o.max,
            instance: ctx.instance.to_string(),
        }))
    }
}

static LENGTH: LengthKind = LengthKind;

#[test]
fn a_registered_kind_is_listed_by_toml_with_named_instances() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    std::fs::write(
        &path,
        "[pipeline]\nstages = [\"length\", \"strict\"]\n\n[length]\nmax = 10\n\n[strict]\nkind = \"length\"\nmax = 3\n",
    )
    .unwrap();
    // Without the registration the file names an unknown stage.
    let err = Pipeline::from_toml(&path).err().unwrap().to_string();
    assert!(err.contains("unknown stage `length`"), "{err}");

    let pipeline = Pipeline::from_toml_with_kinds(&path, &[], &[&LENGTH]).unwrap();
    assert_eq!(pipeline.stage_names(), ["length", "strict"]);
    let doc = pipeline.process("高血压患者").unwrap();
    let labels: Vec<(&str, Option<&str>)> = doc
        .labels
        .iter()
        .map(|l| (l.label.as_str(), l.source.as_deref()))
        .collect();
    assert_eq!(
        labels,
        [("short", Some("length")), ("long", Some("strict"))]
    );

    // Its options are checked with the file's key.
    std::fs::write(
        &path,
        "[pipeline]\nstages = [\"length\"]\n\n[length]\nmaximum = 3\n",
    )
    .unwrap();
    let err = Pipeline::from_toml_with_kinds(&path, &[], &[&LENGTH])
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("length.maximum") || err.contains("maximum"),
        "{err}"
    );

    // The builder registers it for pipelines assembled in code.
    let pipeline = Pipeline::builder()
        .register(&LENGTH)
        .stage("length", &toml::toml! { max = 1 })
        .build()
        .unwrap();
    assert_eq!(pipeline.process("好的").unwrap().labels[0].label, "long");
}
