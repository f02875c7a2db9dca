//! ProjectionExpression: the parts of an item that the paths select, nested as in the item, list
//! elements kept in their order.

use std::collections::BTreeMap;

use tern_proto::value::{AttributeValue, Item};

use super::document::{get, Segment};

/// A partial copy of a value being built.
enum Node {
    Leaf(AttributeValue),
    Map(BTreeMap<String, Node>),
    List(BTreeMap<usize, Node>),
}

impl Node {
    fn into_value(self) -> AttributeValue {
        match self {
            Node::Leaf(value) => value,
            Node::Map(fields) => AttributeValue::M(fields.into_iter().map(|(k, v)| (k, v.into_value())).collect()),
            Node::List(elements) => AttributeValue::L(elements.into_values().map(Node::into_value).collect()),
        }
    }
}

fn insert(node: &mut Node, rest: &[Segment], value: AttributeValue) {
    let Some((first, rest)) = rest.split_first() else {
        *node = Node::Leaf(value);
        return;
    };
    let child = match (node, first) {
        (Node::Map(fields), Segment::Key(k)) => fields.entry(k.clone()).or_insert_with(|| empty_for(rest)),
        (Node::List(elements), Segment::Index(i)) => elements.entry(*i).or_insert_with(|| empty_for(rest)),
        // Overlapping paths are rejected before projection; a leaf already holds everything below it.
        _ => return,
    };
    insert(child, rest, value);
}

fn empty_for(rest: &[Segment]) -> Node {
    match rest.first() {
        Some(Segment::Index(_)) => Node::List(BTreeMap::new()),
        _ => Node::Map(BTreeMap::new()),
    }
}

/// The attributes of `item` that `paths` select.
pub fn project(item: &Item, paths: &[Vec<Segment>]) -> Item {
    let mut root: BTreeMap<String, Node> = BTreeMap::new();
    for path in paths {
        let (Some(value), Some((Segment::Key(first), rest))) = (get(item, path), path.split_first()) else { continue };
        let node = root.entry(first.clone()).or_insert_with(|| empty_for(rest));
        insert(node, rest, value.clone());
    }
    root.into_iter().map(|(k, v)| (k, v.into_value())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_paths_keep_their_shape_and_list_order() {
        let list = AttributeValue::L(vec![
            AttributeValue::S("a".into()),
            AttributeValue::S("b".into()),
            AttributeValue::S("c".into()),
        ]);
        let map = AttributeValue::M(
            [("x".to_string(), AttributeValue::Bool(true)), ("y".to_string(), AttributeValue::Null)].into(),
        );
        let item: Item =
            [("l".to_string(), list), ("m".to_string(), map), ("z".to_string(), AttributeValue::Null)].into();
        let key = |k: &str| Segment::Key(k.into());
        let projected = project(
            &item,
            &[
                vec![key("l"), Segment::Index(2)],
                vec![key("l"), Segment::Index(0)],
                vec![key("m"), key("x")],
                vec![key("missing")],
            ],
        );
        let expected: Item = [
            ("l".to_string(), AttributeValue::L(vec![AttributeValue::S("a".into()), AttributeValue::S("c".into())])),
            ("m".to_string(), AttributeValue::M([("x".to_string(), AttributeValue::Bool(true))].into())),
        ]
        .into();
        assert_eq!(projected, expected);
    }
}
