//! Entity-linking specification: real sentences in, exact mentions out.
use zhishi::kg::transe::{Norm, TransE};
use zhishi::text::{LinkOptions, Linker, MemoryKg, OverlapPolicy};

fn kg(triples: &[(&str, &str, &str)]) -> MemoryKg {
    MemoryKg::from_triples(triples.iter().copied())
}

/// Options that keep every detected mention (no NIL, no POS filter), to test detection alone.
fn detect_all() -> LinkOptions {
    LinkOptions {
        nil_threshold: 0.0,
        overlap: OverlapPolicy::All,
        exclude_pos: Vec::new(),
        ..LinkOptions::default()
    }
}

fn texts(linker: &Linker<MemoryKg>, text: &str) -> Vec<String> {
    linker.link(text).into_iter().map(|m| m.text).collect()
}

#[test]
fn a_name_inside_a_longer_word_is_not_matched() {
    let kg = kg(&[("京", "类别", "汉字"), ("天安", "类别", "地名")]);
    let linker = Linker::build(kg.clone(), detect_all()).unwrap();
    assert!(texts(&linker, "我爱北京天安门").is_empty());

    let loose = LinkOptions {
        respect_boundaries: false,
        ..detect_all()
    };
    let linker = Linker::build(kg, loose).unwrap();
    assert_eq!(texts(&linker, "我爱北京天安门"), ["京", "天安"]);
}

#[test]
fn overlapping_names_resolve_per_policy() {
    let kg = kg(&[
        ("机械设计基础", "作者", "杨可桢"),
        ("机械设计", "类别", "学科"),
        ("基础", "类别", "词语"),
    ]);
    let base = LinkOptions {
        kg_user_words: false,
        ..detect_all()
    };
    let all = Linker::build(kg.clone(), base.clone()).unwrap();
    assert_eq!(
        texts(&all, "机械设计基础这本书的作者是谁"),
        ["机械设计", "机械设计基础", "基础"]
    );
    let longest = Linker::build(
        kg,
        LinkOptions {
            overlap: OverlapPolicy::Longest,
            ..base
        },
    )
    .unwrap();
    assert_eq!(
        texts(&longest, "机械设计基础这本书的作者是谁"),
        ["机械设计基础"]
    );
}

#[test]
fn offsets_round_trip_on_mixed_text() {
    let kg = kg(&[
        ("lumia1020", "品牌", "诺基亚"),
        ("北京", "类别", "城市"),
        ("iPhone 7", "品牌", "苹果"),
        ("2009年", "类别", "年份"),
    ]);
    let linker = Linker::build(kg, detect_all()).unwrap();
    let text = "我用ＬＵＭＩＡ 1020拍了😀北京\n的照片，iPhone 7也不错！2009年。";
    let mentions = linker.link(text);
    let found: Vec<&str> = mentions.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(found, ["ＬＵＭＩＡ 1020", "北京", "iPhone 7", "2009年"]);
    for m in &mentions {
        assert_eq!(&text[m.start..m.end], m.text);
        let by_chars: String = text
            .chars()
            .skip(m.char_start)
            .take(m.char_end - m.char_start)
            .collect();
        assert_eq!(by_chars, m.text);
    }
    assert_eq!(mentions[1].entity.name, "北京");
    assert_eq!((mentions[1].char_start, mentions[1].char_end), (15, 17));
}

#[test]
fn empty_input_and_a_kg_without_names_give_no_mentions() {
    let linker = Linker::build(kg(&[("北京", "类别", "城市")]), detect_all()).unwrap();
    assert!(linker.link("").is_empty());
    assert!(linker.link(" \n\t").is_empty());

    let empty = Linker::build(kg(&[]), detect_all()).unwrap();
    assert_eq!(empty.name_count(), 0);
    assert!(empty.link("我爱北京天安门").is_empty());
}

#[test]
fn a_one_megabyte_line_is_linked_in_full() {
    let linker = Linker::build(kg(&[("北京大学", "类别", "大学")]), detect_all()).unwrap();
    let sentence = "我在北京大学读书，";
    let repeats = 1_000_000 / sentence.len() + 1;
    let text = sentence.repeat(repeats);
    let mentions = linker.link(&text);
    assert_eq!(mentions.len(), repeats);
    let last = mentions.last().unwrap();
    assert_eq!(&text[last.start..last.end], "北京大学");
}

#[test]
fn context_picks_the_sense_an_alias_refers_to() {
    let kg = kg(&[
        ("苹果（水果）", "类别", "水果"),
        ("苹果（水果）", "颜色", "红色"),
        ("苹果（公司）", "产品", "手机"),
        ("苹果（公司）", "创始人", "乔布斯"),
        ("苹果（公司）", "总部", "库比蒂诺"),
    ]);
    let linker = Linker::build(kg, detect_all()).unwrap();
    let company = linker.link("苹果发布了新款手机");
    assert_eq!(company[0].entity.name, "苹果（公司）");
    assert_eq!(company[0].candidates.len(), 2);
    let fruit = linker.link("这个苹果是红色的");
    assert_eq!(fruit[0].entity.name, "苹果（水果）");
}

#[test]
fn typos_find_fuzzy_candidates() {
    let kg = kg(&[("山西大学", "所属城市", "太原"), ("苦恋", "导演", "彭小莲")]);
    let linker = Linker::build(kg, detect_all()).unwrap();
    let swapped = linker.link("西山大学在哪个城市？");
    assert_eq!(swapped[0].text, "西山大学");
    assert_eq!(swapped[0].entity.name, "山西大学");
    let homophone = linker.link("苦练的导演是谁？");
    assert_eq!(homophone[0].text, "苦练");
    assert_eq!(homophone[0].entity.name, "苦恋");
}

#[test]
fn the_subject_beats_generic_names_when_the_question_names_its_predicate() {
    let kg = kg(&[
        ("李明", "出生日期", "1963.1"),
        ("时间", "类别", "概念"),
        ("什么", "类别", "代词"),
    ]);
    let linker = Linker::build(kg, detect_all()).unwrap();
    let mentions = linker.link("李明的出生时间是什么？");
    let best = mentions
        .iter()
        .max_by(|a, b| a.score.total_cmp(&b.score))
        .unwrap();
    assert_eq!(best.entity.name, "李明");
}

#[test]
fn weak_links_are_dropped_as_nil() {
    let kg = kg(&[("时间", "类别", "概念")]);
    let strict = LinkOptions {
        nil_threshold: 0.99,
        ..LinkOptions::default()
    };
    let linker = Linker::build(kg, strict).unwrap();
    assert!(linker.link("现在是什么时间？").is_empty());
}

#[test]
fn knowledge_is_ranked_by_relevance_to_the_sentence() {
    let kg = kg(&[
        ("山西大学", "中文名", "山西大学"),
        ("山西大学", "创办时间", "1902年"),
        ("山西大学", "所属城市", "太原"),
        ("山西大学", "建筑面积", "142万平方米"),
    ]);
    let linker = Linker::build(kg, detect_all()).unwrap();
    let text = "山西大学的建筑面积是多少？";
    let mention = &linker.link(text)[0];
    let knowledge = linker.select_knowledge(text, mention, 2).unwrap();
    let picked: Vec<(&str, &str)> = knowledge
        .iter()
        .map(|k| (k.predicate.as_str(), k.object.as_str()))
        .collect();
    assert_eq!(
        picked,
        [("建筑面积", "142万平方米"), ("创办时间", "1902年")]
    );
}

#[test]
fn one_linker_serves_many_threads() {
    fn assert_send_sync<T: Send + Sync>(_: &T) {}
    let linker = Linker::build(kg(&[("北京", "类别", "城市")]), detect_all()).unwrap();
    assert_send_sync(&linker);
    let counts: Vec<usize> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| linker.link("北京欢迎你，北京").len()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(counts, [2, 2, 2, 2]);
}

#[test]
fn a_book_title_is_found_without_its_brackets() {
    let kg = kg(&[("《哈姆雷特》", "作者", "莎士比亚")]);
    let linker = Linker::build(kg, detect_all()).unwrap();
    let mentions = linker.link("哈姆雷特的作者是谁？");
    assert_eq!(mentions.len(), 1);
    assert_eq!(mentions[0].text, "哈姆雷特");
    assert_eq!(mentions[0].entity.name, "《哈姆雷特》");
}

#[test]
fn pos_and_length_filters_drop_generic_mentions() {
    let kg = kg(&[
        ("你", "类别", "代词"),
        ("北京", "类别", "城市"),
        ("京", "类别", "汉字"),
    ]);
    let text = "你知道北京吗？";
    let all = Linker::build(kg.clone(), detect_all()).unwrap();
    assert_eq!(texts(&all, text), ["你", "北京"]);
    let no_pronouns = LinkOptions {
        exclude_pos: vec!["r".into()],
        ..detect_all()
    };
    let linker = Linker::build(kg.clone(), no_pronouns).unwrap();
    assert_eq!(texts(&linker, text), ["北京"]);
    // The default filter keeps pronouns and function words out.
    let defaults = LinkOptions {
        nil_threshold: 0.0,
        ..LinkOptions::default()
    };
    let linker = Linker::build(kg.clone(), defaults).unwrap();
    assert_eq!(texts(&linker, text), ["北京"]);
    let two_chars = LinkOptions {
        min_chars: 2,
        ..detect_all()
    };
    let linker = Linker::build(kg, two_chars).unwrap();
    assert_eq!(texts(&linker, text), ["北京"]);
}

#[test]
fn a_kg_edge_between_two_mentions_marks_both_coherent() {
    let kg = kg(&[
        ("苹果（公司）", "创始人", "乔布斯"),
        ("苹果（水果）", "类别", "水果"),
        ("乔布斯", "国籍", "美国"),
    ]);
    let linker = Linker::build(kg, detect_all()).unwrap();
    let mentions = linker.link("乔布斯和苹果");
    let apple = mentions.iter().find(|m| m.text == "苹果").unwrap();
    let coherence: Vec<(&str, f32)> = apple
        .candidates
        .iter()
        .map(|c| (c.name.as_str(), c.features.coherence))
        .collect();
    assert_eq!(coherence, [("苹果（公司）", 1.0), ("苹果（水果）", 0.0)]);
    let jobs = mentions.iter().find(|m| m.text == "乔布斯").unwrap();
    assert_eq!(jobs.candidates[0].features.coherence, 1.0);
}

#[test]
fn transe_vectors_make_related_senses_coherent_without_an_edge() {
    // The fruit has the higher prior; nothing in the sentence names either
    // sense's facts, and no KG edge joins 乔布斯 to either 苹果.
    let kg = kg(&[
        ("苹果（公司）", "类别", "公司"),
        ("苹果（水果）", "类别", "水果"),
        ("苹果（水果）", "颜色", "红色"),
        ("乔布斯", "职业", "企业家"),
    ]);
    let text = "乔布斯爱苹果";
    let plain = Linker::build(kg.clone(), detect_all()).unwrap();
    assert!(!plain.has_embeddings());
    let apple = |linker: &Linker<MemoryKg>| {
        let mentions = linker.link(text);
        let m = mentions.into_iter().find(|m| m.text == "苹果").unwrap();
        m.entity.name
    };
    assert_eq!(apple(&plain), "苹果（水果）");

    // One-hot vectors, except that the company shares 乔布斯' vector.
    let terms = 8;
    let mut entity = vec![0.0f32; terms * terms];
    for id in 0..terms {
        entity[id * terms + id] = 1.0;
    }
    let company = kg.id("苹果（公司）").unwrap() as usize;
    let jobs = kg.id("乔布斯").unwrap() as usize;
    entity.copy_within(jobs * terms..(jobs + 1) * terms, company * terms);
    let vectors = TransE {
        dim: terms,
        norm: Norm::L2,
        entity,
        relation: vec![0.0; 3 * terms],
        reciprocal: false,
    };
    let embedded = Linker::build(kg.with_embeddings(vectors), detect_all()).unwrap();
    assert!(embedded.has_embeddings());
    assert_eq!(apple(&embedded), "苹果（公司）");
}

#[test]
fn linking_given_words_matches_linking_the_text() {
    let kg = kg(&[
        ("lumia1020", "品牌", "诺基亚"),
        ("北京", "类别", "城市"),
        ("北京大学", "位于", "北京"),
        ("iPhone 7", "品牌", "苹果"),
        ("你", "类别", "代词"),
    ]);
    let texts = [
        "我用ＬＵＭＩＡ 1020拍了😀北京\n的照片，iPhone 7也不错！",
        "北京大学在北京。你去过吗？",
        "  ",
        "",
    ];
    let no_pronouns = LinkOptions {
        exclude_pos: vec!["r".into()],
        ..detect_all()
    };
    for opts in [detect_all(), no_pronouns] {
        let linker = Linker::build(kg.clone(), opts).unwrap();
        for text in texts {
            let tagged = linker.segmenter().segment(text, true);
            let words = tagged.iter().map(|t| (t.text, t.pos.as_deref()));
            assert_eq!(linker.link_words(text, words), linker.link(text), "{text}");
            // Untagged words serve when no POS filter needs tags; otherwise the linker segments.
            let untagged = linker.segmenter().segment(text, false);
            let words = untagged.iter().map(|t| (t.text, None));
            assert_eq!(linker.link_words(text, words), linker.link(text), "{text}");
        }
    }
}

#[test]
fn given_words_set_the_boundaries_and_words_that_do_not_tile_are_ignored() {
    let linker = Linker::build(kg(&[("天安", "类别", "地名")]), detect_all()).unwrap();
    let text = "我爱北京天安门";
    assert!(texts(&linker, text).is_empty());
    let cut = ["我", "爱", "北京", "天安", "门"];
    let mentions = linker.link_words(text, cut.iter().map(|w| (*w, None)));
    let found: Vec<&str> = mentions.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(found, ["天安"]);
    // A word missing, out of order or not from the text: segmented as `link` does.
    for words in [
        &["我", "爱", "北京", "天安"][..],
        &["爱", "我", "北京", "天安", "门"],
        &["我", "爱", "南京", "天安", "门"],
    ] {
        let mentions = linker.link_words(text, words.iter().map(|w| (*w, None)));
        assert_eq!(mentions, linker.link(text), "{words:?}");
    }
}
