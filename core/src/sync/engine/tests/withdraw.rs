//! Withdrawing a space this node left: its sessions end, the peers in them
//! are disconnected, and later offers of it open nothing.

use super::*;

#[test]
fn a_withdrawn_space_ends_its_sessions_and_ignores_later_offers() {
    let mut me = side(1, &[TEAM, OTHER]);
    let peer = side(2, &[]);
    let bystander = side(3, &[]);
    in_session(&mut me, &peer);
    // A proven peer in OTHER only keeps its connection.
    me.replica
        .roles
        .insert((OTHER.into(), bystander.id), Role::Writer);
    proven(&mut me, &bystander);

    let outs = me.input(Input::Withdraw(TEAM.into()));
    assert_eq!(closed(&outs), Some("this node left space team"), "{outs:?}");
    let closed_peers: Vec<NodeId> = outs
        .iter()
        .filter_map(|o| match o {
            Output::Close(p, _) => Some(*p),
            _ => None,
        })
        .collect();
    assert_eq!(closed_peers, [peer.id]);
    assert!(!me.engine.spaces.contains(TEAM));
    assert!(me.engine.spaces.contains(OTHER));
    // Withdrawing again changes nothing.
    assert!(me.input(Input::Withdraw(TEAM.into())).is_empty());

    // The peer reconnects and offers the space: no session, nothing sent
    // about it, our offer does not name it.
    let outs = proven(&mut me, &peer);
    assert_eq!(offered(&outs), Some(vec![]), "{outs:?}");
    let outs = me.input(Input::Received(
        peer.id,
        Message::Offer {
            spaces: vec![claim(TEAM, &[])],
        },
    ));
    assert!(!me.engine.in_session(peer.id, TEAM));
    assert!(sent(&outs).is_empty(), "{outs:?}");
    // Its session frames about the space are ignored.
    let outs = me.input(Input::Received(peer.id, i_have_nothing()));
    assert!(
        sent(&outs).is_empty() && closed(&outs).is_none(),
        "{outs:?}"
    );
}
