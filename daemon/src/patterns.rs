//! Patterns the OpenAPI document states for values whose rules are
//! numeric or binary, spelled out exactly as regular expressions so a
//! generated client or fuzzer knows precisely what the server takes.
//! `daemon/tools/gen_patterns.py` generates them (and checks each against
//! a reference parser on random samples); regenerate rather than edit.

/// A node id: base58 of the 38-byte peer id of an ed25519 key (prefix
/// `00 24 08 01 12 20`, then 32 key bytes), i.e. the 52-character strings
/// from `12D3KooW9pNA...` to `12D3KooWT3gY...` that decode to that prefix.
pub const NODE_ID: &str = "^1(?:2D3KooW9pNAk8aiBuGVQtWRdbkLmo5qVL3e2h5UxbN2Nz9ttwi[w-z]|2D3KooW9pNAk8aiBuGVQtWRdbkLmo5qVL3e2h5UxbN2Nz9ttw[jkm-z][1-9A-HJ-NP-Za-km-z]|2D3KooW9pNAk8aiBuGVQtWRdbkLmo5qVL3e2h5UxbN2Nz9tt[x-z][1-9A-HJ-NP-Za-km-z]{2}|2D3KooW9pNAk8aiBuGVQtWRdbkLmo5qVL3e2h5UxbN2Nz9t[u-z][1-9A-HJ-NP-Za-km-z]{3}|2D3KooW9pNAk8aiBuGVQtWRdbkLmo5qVL3e2h5UxbN2Nz9[u-z][1-9A-HJ-NP-Za-km-z]{4}|2D3KooW9pNAk8aiBuGVQtWRdbkLmo5qVL3e2h5UxbN2Nz[A-HJ-NP-Za-km-z][1-9A-HJ-NP-Za-km-z]{5}|2D3KooW9pNAk8aiBuGVQtWRdbkLmo5qVL3e2h5UxbN2[P-Za-km-z][1-9A-HJ-NP-Za-km-z]{7}|2D3KooW9pNAk8aiBuGVQtWRdbkLmo5qVL3e2h5UxbN[3-9A-HJ-NP-Za-km-z][1-9A-HJ-NP-Za-km-z]{8}|2D3KooW9pNAk8aiBuGVQtWRdbkLmo5qVL3e2h5Uxb[P-Za-km-z][1-9A-HJ-NP-Za-km-z]{9}|2D3KooW9pNAk8aiBuGVQtWRdbkLmo5qVL3e2h5Ux[c-km-z][1-9A-HJ-NP-Za-km-z]{10}|2D3KooW9pNAk8aiBuGVQtWRdbkLmo5qVL3e2h5U[yz][1-9A-HJ-NP-Za-km-z]{11}|2D3KooW9pNAk8aiBuGVQtWRdbkLmo5qVL3e2h5[V-Za-km-z][1-9A-HJ-NP-Za-km-z]{12}|2D3KooW9pNAk8aiBuGVQtWRdbkLmo5qVL3e2h[6-9A-HJ-NP-Za-km-z][1-9A-HJ-NP-Za-km-z]{13}|2D3KooW9pNAk8aiBuGVQtWRdbkLmo5qVL3e2[i-km-z][1-9A-HJ-NP-Za-km-z]{14}|2D3KooW9pNAk8aiBuGVQtWRdbkLmo5qVL3e[3-9A-HJ-NP-Za-km-z][1-9A-HJ-NP-Za-km-z]{15}|2D3KooW9pNAk8aiBuGVQtWRdbkLmo5qVL3[f-km-z][1-9A-HJ-NP-Za-km-z]{16}|2D3KooW9pNAk8aiBuGVQtWRdbkLmo5qVL[4-9A-HJ-NP-Za-km-z][1-9A-HJ-NP-Za-km-z]{17}|2D3KooW9pNAk8aiBuGVQtWRdbkLmo5qV[MNP-Za-km-z][1-9A-HJ-NP-Za-km-z]{18}|2D3KooW9pNAk8aiBuGVQtWRdbkLmo5q[W-Za-km-z][1-9A-HJ-NP-Za-km-z]{19}|2D3KooW9pNAk8aiBuGVQtWRdbkLmo5[r-z][1-9A-HJ-NP-Za-km-z]{20}|2D3KooW9pNAk8aiBuGVQtWRdbkLmo[6-9A-HJ-NP-Za-km-z][1-9A-HJ-NP-Za-km-z]{21}|2D3KooW9pNAk8aiBuGVQtWRdbkLm[p-z][1-9A-HJ-NP-Za-km-z]{22}|2D3KooW9pNAk8aiBuGVQtWRdbkL[n-z][1-9A-HJ-NP-Za-km-z]{23}|2D3KooW9pNAk8aiBuGVQtWRdbk[MNP-Za-km-z][1-9A-HJ-NP-Za-km-z]{24}|2D3KooW9pNAk8aiBuGVQtWRdb[m-z][1-9A-HJ-NP-Za-km-z]{25}|2D3KooW9pNAk8aiBuGVQtWRd[c-km-z][1-9A-HJ-NP-Za-km-z]{26}|2D3KooW9pNAk8aiBuGVQtWR[e-km-z][1-9A-HJ-NP-Za-km-z]{27}|2D3KooW9pNAk8aiBuGVQtW[S-Za-km-z][1-9A-HJ-NP-Za-km-z]{28}|2D3KooW9pNAk8aiBuGVQt[X-Za-km-z][1-9A-HJ-NP-Za-km-z]{29}|2D3KooW9pNAk8aiBuGVQ[u-z][1-9A-HJ-NP-Za-km-z]{30}|2D3KooW9pNAk8aiBuGV[R-Za-km-z][1-9A-HJ-NP-Za-km-z]{31}|2D3KooW9pNAk8aiBuG[W-Za-km-z][1-9A-HJ-NP-Za-km-z]{32}|2D3KooW9pNAk8aiBu[HJ-NP-Za-km-z][1-9A-HJ-NP-Za-km-z]{33}|2D3KooW9pNAk8aiB[v-z][1-9A-HJ-NP-Za-km-z]{34}|2D3KooW9pNAk8ai[C-HJ-NP-Za-km-z][1-9A-HJ-NP-Za-km-z]{35}|2D3KooW9pNAk8a[jkm-z][1-9A-HJ-NP-Za-km-z]{36}|2D3KooW9pNAk8[b-km-z][1-9A-HJ-NP-Za-km-z]{37}|2D3KooW9pNAk[9A-HJ-NP-Za-km-z][1-9A-HJ-NP-Za-km-z]{38}|2D3KooW9pNA[m-z][1-9A-HJ-NP-Za-km-z]{39}|2D3KooW9pN[B-HJ-NP-Za-km-z][1-9A-HJ-NP-Za-km-z]{40}|2D3KooW9p[P-Za-km-z][1-9A-HJ-NP-Za-km-z]{41}|2D3KooW9[q-z][1-9A-HJ-NP-Za-km-z]{42}|2D3KooW[A-HJ-NP-S][1-9A-HJ-NP-Za-km-z]{43}|2D3KooWT[12][1-9A-HJ-NP-Za-km-z]{42}|2D3KooWT3[1-9A-HJ-NP-Za-f][1-9A-HJ-NP-Za-km-z]{41}|2D3KooWT3g[1-9A-HJ-NP-X][1-9A-HJ-NP-Za-km-z]{40}|2D3KooWT3gY[1-9A-D][1-9A-HJ-NP-Za-km-z]{39}|2D3KooWT3gYE[1-9A-HJ-NP-Za-km-u][1-9A-HJ-NP-Za-km-z]{38}|2D3KooWT3gYEv[1-9A-HJK][1-9A-HJ-NP-Za-km-z]{37}|2D3KooWT3gYEvL[1-9A-H][1-9A-HJ-NP-Za-km-z]{36}|2D3KooWT3gYEvLJ[1-9A-HJ-NP-Za-km-x][1-9A-HJ-NP-Za-km-z]{35}|2D3KooWT3gYEvLJy[1-9A-HJ-NP-Za-km-w][1-9A-HJ-NP-Za-km-z]{34}|2D3KooWT3gYEvLJyx1[1-9A-E][1-9A-HJ-NP-Za-km-z]{32}|2D3KooWT3gYEvLJyx1F[1-9A-HJ-NP-Za-km-x][1-9A-HJ-NP-Za-km-z]{31}|2D3KooWT3gYEvLJyx1Fy[1-9A-HJ-NP-Za-km-x][1-9A-HJ-NP-Za-km-z]{30}|2D3KooWT3gYEvLJyx1Fyy[1-9A-G][1-9A-HJ-NP-Za-km-z]{29}|2D3KooWT3gYEvLJyx1FyyH[1-9A-HJ-NP-Za-km-p][1-9A-HJ-NP-Za-km-z]{28}|2D3KooWT3gYEvLJyx1FyyHq[1-9A-HJ-NP-Za-km-q][1-9A-HJ-NP-Za-km-z]{27}|2D3KooWT3gYEvLJyx1FyyHqr[1-9A-HJ-NP-Za-k][1-9A-HJ-NP-Za-km-z]{26}|2D3KooWT3gYEvLJyx1FyyHqrm[1-9A-HJ-NP-Za-km-u][1-9A-HJ-NP-Za-km-z]{25}|2D3KooWT3gYEvLJyx1FyyHqrmv[1-9A-HJ-NP-Za-c][1-9A-HJ-NP-Za-km-z]{24}|2D3KooWT3gYEvLJyx1FyyHqrmvd[1-9A-HJ-NP-Za-km-x][1-9A-HJ-NP-Za-km-z]{23}|2D3KooWT3gYEvLJyx1FyyHqrmvdy1[1-9A-HJ-NP-Za-km-s][1-9A-HJ-NP-Za-km-z]{21}|2D3KooWT3gYEvLJyx1FyyHqrmvdy1t[1-9A-HJ-L][1-9A-HJ-NP-Za-km-z]{20}|2D3KooWT3gYEvLJyx1FyyHqrmvdy1tM[1-9A-HJ-NP-Za-i][1-9A-HJ-NP-Za-km-z]{19}|2D3KooWT3gYEvLJyx1FyyHqrmvdy1tMj[1-9A-HJ-NP-Za-km-o][1-9A-HJ-NP-Za-km-z]{18}|2D3KooWT3gYEvLJyx1FyyHqrmvdy1tMjp[1-9A-HJ-NP-Za-f][1-9A-HJ-NP-Za-km-z]{17}|2D3KooWT3gYEvLJyx1FyyHqrmvdy1tMjpg[1-9A-HJ-NP-Za-km-w][1-9A-HJ-NP-Za-km-z]{16}|2D3KooWT3gYEvLJyx1FyyHqrmvdy1tMjpgx[1-9A-HJ-NP-Za-k][1-9A-HJ-NP-Za-km-z]{15}|2D3KooWT3gYEvLJyx1FyyHqrmvdy1tMjpgxm[1-9A-HJ-NP-Za-km-t][1-9A-HJ-NP-Za-km-z]{14}|2D3KooWT3gYEvLJyx1FyyHqrmvdy1tMjpgxmu[1-8][1-9A-HJ-NP-Za-km-z]{13}|2D3KooWT3gYEvLJyx1FyyHqrmvdy1tMjpgxmu9[1-9A-HJ-NP-Z][1-9A-HJ-NP-Za-km-z]{12}|2D3KooWT3gYEvLJyx1FyyHqrmvdy1tMjpgxmu9a[1-9A-HJ-NP-R][1-9A-HJ-NP-Za-km-z]{11}|2D3KooWT3gYEvLJyx1FyyHqrmvdy1tMjpgxmu9aS[1-9A-HJ-NP-Za-d][1-9A-HJ-NP-Za-km-z]{10}|2D3KooWT3gYEvLJyx1FyyHqrmvdy1tMjpgxmu9aSe[1-9A-HJ][1-9A-HJ-NP-Za-km-z]{9}|2D3KooWT3gYEvLJyx1FyyHqrmvdy1tMjpgxmu9aSeK[1-9A-HJ-L][1-9A-HJ-NP-Za-km-z]{8}|2D3KooWT3gYEvLJyx1FyyHqrmvdy1tMjpgxmu9aSeKM[1-9A-D][1-9A-HJ-NP-Za-km-z]{7}|2D3KooWT3gYEvLJyx1FyyHqrmvdy1tMjpgxmu9aSeKME[1-9A-HJ-NP-Za-km-t][1-9A-HJ-NP-Za-km-z]{6}|2D3KooWT3gYEvLJyx1FyyHqrmvdy1tMjpgxmu9aSeKMEu[1-9A-HJ-NP-Z][1-9A-HJ-NP-Za-km-z]{5}|2D3KooWT3gYEvLJyx1FyyHqrmvdy1tMjpgxmu9aSeKMEua[1-9A-HJ-NP-Za-e][1-9A-HJ-NP-Za-km-z]{4}|2D3KooWT3gYEvLJyx1FyyHqrmvdy1tMjpgxmu9aSeKMEuaf[1-9A-HJ-NP][1-9A-HJ-NP-Za-km-z]{3}|2D3KooWT3gYEvLJyx1FyyHqrmvdy1tMjpgxmu9aSeKMEuafQ[1-9A-HJ-NP-Za-km-s][1-9A-HJ-NP-Za-km-z]{2}|2D3KooWT3gYEvLJyx1FyyHqrmvdy1tMjpgxmu9aSeKMEuafQt[1-9A-HJ-NP-Za-km-x][1-9A-HJ-NP-Za-km-z]|2D3KooWT3gYEvLJyx1FyyHqrmvdy1tMjpgxmu9aSeKMEuafQty[1-9A-C])$";

/// An invite expiry: `N[s|m|h|d|w]` (bare `N` is seconds), more than 0
/// and at most 100 years, leading zeros allowed.
pub const DURATION: &str = "^(?:0*(?:[1-9]|[1-9][0-9]|[1-9][0-9]{2}|[1-9][0-9]{3}|[1-9][0-9]{4}|[1-9][0-9]{5}|[1-9][0-9]{6}|[1-9][0-9]{7}|[1-9][0-9]{8}|[1-2][0-9]{9}|30[0-9]{8}|31[0-4][0-9]{7}|315[0-2][0-9]{6}|3153[0-5][0-9]{5}|3153600000)[s]?|0*(?:[1-9]|[1-9][0-9]|[1-9][0-9]{2}|[1-9][0-9]{3}|[1-9][0-9]{4}|[1-9][0-9]{5}|[1-9][0-9]{6}|[1-4][0-9]{7}|5[0-1][0-9]{6}|52[0-4][0-9]{5}|525[0-5][0-9]{4}|52560000)m|0*(?:[1-9]|[1-9][0-9]|[1-9][0-9]{2}|[1-9][0-9]{3}|[1-9][0-9]{4}|[1-7][0-9]{5}|8[0-6][0-9]{4}|87[0-5][0-9]{3}|876000)h|0*(?:[1-9]|[1-9][0-9]|[1-9][0-9]{2}|[1-9][0-9]{3}|[1-2][0-9]{4}|3[0-5][0-9]{3}|36[0-4][0-9]{2}|36500)d|0*(?:[1-9]|[1-9][0-9]|[1-9][0-9]{2}|[1-4][0-9]{3}|5[0-1][0-9]{2}|520[0-9]|521[0-4])w)$";

/// Sets these patterns where the document describes such values (utoipa's
/// attributes take only literals). Panics if a place moved: the OpenAPI
/// tests build the document, so that cannot ship.
pub fn apply(doc: &mut serde_json::Value) {
    let invite = &mut doc["components"]["schemas"]["InviteRequest"]["properties"];
    set(&mut invite["expires"], DURATION);
    set(&mut invite["node"], NODE_ID);
    let revoke = &mut doc["paths"]["/v1/spaces/{space}/members/{node_id}"]["delete"]["parameters"];
    let node_id = revoke
        .as_array_mut()
        .and_then(|ps| ps.iter_mut().find(|p| p["name"] == "node_id"))
        .expect("the revoke operation has a node_id parameter");
    set(&mut node_id["schema"], NODE_ID);
    // Batch operations refuse fields they do not have (a typo such as
    // `colection` must not silently become another write): say so.
    let schemas = &mut doc["components"]["schemas"];
    schemas["BatchRequest"]["additionalProperties"] = false.into();
    let variants = schemas["BatchOp"]["oneOf"]
        .as_array_mut()
        .expect("BatchOp is a oneOf of its operations");
    for variant in variants {
        variant["additionalProperties"] = false.into();
    }
    // An optional header or query value is absent or a string, never JSON
    // null: utoipa reads `Option<String>` as nullable, and a client taking
    // it at its word would send the text `null`.
    for item in doc["paths"]
        .as_object_mut()
        .into_iter()
        .flat_map(|p| p.values_mut())
    {
        for op in item
            .as_object_mut()
            .into_iter()
            .flat_map(|o| o.values_mut())
        {
            let params = op.get_mut("parameters").and_then(|p| p.as_array_mut());
            for param in params.into_iter().flatten() {
                if let Some(types) = param["schema"]["type"].as_array() {
                    let kept: Vec<_> = types.iter().filter(|t| *t != "null").cloned().collect();
                    if let [one] = kept.as_slice() {
                        param["schema"]["type"] = one.clone();
                    }
                }
            }
        }
    }
}

fn set(schema: &mut serde_json::Value, pattern: &str) {
    let object = schema
        .as_object_mut()
        .expect("a schema to put a pattern on");
    object.insert("pattern".into(), pattern.into());
}
