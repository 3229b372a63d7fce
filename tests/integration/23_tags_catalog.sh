#!/usr/bin/env bash
# 23_tags_catalog: tag listing (order, n/last pagination with Link headers)
# and the _catalog extension, multi-level repository names.
. "${SHOAL_TESTS:-$(dirname "$0")/..}/lib/lib.sh"

shoal_start
D=$T_TMP/data
mkdir -p "$D"

printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$D/config"
rand_file "$D/layer" 1000
oci_image_manifest "$D/m" "$D/config" "$D/layer"

# populate REPO TAG...: blobs, then the manifest under every tag.
populate()
{
    local repo=$1 tag
    shift
    push_blob "$repo" "$D/config"
    push_blob "$repo" "$D/layer"
    for tag in "$@"; do
        push_manifest "$repo" "$tag" "$D/m" "$MT_OCI_MANIFEST"
    done
}

# ------------------------------------------------------------ tags/list
R=test/tags
TAGS=(v1.2 b latest A-1 v1.10 _x a C z 0.1 Z9)
populate "$R" "${TAGS[@]}"
SORTED=$(printf '%s\n' "${TAGS[@]}" | LC_ALL=C sort | jq -R . | jq -s -c .)
t_note "expected order: $SORTED"

req GET "/v2/$R/tags/list"
expect_status 200
expect_header_re Content-Type '^application/json'
expect_jq ".name == \"$R\"" "name is $R"
deviation_begin "2.8 neither sorts nor pages tag lists"
expect_jq ".tags == $SORTED" "all tags, in lexical (byte) order"
expect_no_header Link

# follow_pages URL: walk the Link rel="next" chain from URL, checking every
# page; sets PAGES (number) and GOT (JSON array of all tags) and PAGE_MAX
# (largest page).
follow_pages()
{
    local url=$1 n=0 all='[]' max=0 len
    while [[ -n $url ]] && ((n < 50)); do
        req GET "$url"
        if [[ $STATUS != 200 ]]; then
            fail "$REQ_DESC -> 200 while paging (got $STATUS)" "$(resp_dump)"
            break
        fi
        n=$((n + 1))
        len=$(jq '.tags // [] | length' "$BODY")
        ((len > max)) && max=$len
        all=$(jq -c --argjson all "$all" '$all + (.tags // [])' "$BODY")
        url=$(link_next)
    done
    PAGES=$n
    GOT=$all
    PAGE_MAX=$max
}

# n=2: the first two, and a Link to the rest.
req GET "/v2/$R/tags/list?n=2"
expect_status 200
expect_jq ".tags == ($SORTED | .[0:2])" "first page holds the first 2 tags"
expect_header_re Link '^<[^>]+>; *rel="next"$'
NEXT=$(link_next)
expect_eq "Link next: n" "$(query_param "$NEXT" n)" 2
expect_eq "Link next: last" "$(query_param "$NEXT" last)" "$(jq -r '.[1]' <<<"$SORTED")"
check "Link next points at /v2/$R/tags/list" \
    test "$(python3 -c 'import sys, urllib.parse as u; print(u.urlsplit(sys.argv[1]).path)' "$NEXT")" \
    = "/v2/$R/tags/list"
for n in 1 2 3 4 10 11 100; do
    follow_pages "/v2/$R/tags/list?n=$n"
    expect_eq "tags paged by n=$n, following Link headers" "$GOT" "$SORTED"
    check "pages of n=$n hold at most $n tags (largest $PAGE_MAX, $PAGES pages)" \
        test "$PAGE_MAX" -le "$n"
done
# The last page has no Link; a page that is not the last has one.
req GET "/v2/$R/tags/list?n=11"
expect_status 200
expect_jq '.tags | length == 11' "n=11 gives all 11 tags"
req GET "/v2/$R/tags/list?n=100"
expect_no_header Link

# last= without n: everything after it.
req GET "/v2/$R/tags/list?last=b"
expect_status 200
expect_jq ".tags == ($SORTED | .[index(\"b\") + 1:])" "last=b gives the tags after b"
req GET "/v2/$R/tags/list?n=2&last=b"
expect_status 200
expect_jq ".tags == ($SORTED | .[index(\"b\") + 1:index(\"b\") + 3])" "n=2&last=b gives the 2 tags after b"
# last that is not a tag: the tags sorting after it.
req GET "/v2/$R/tags/list?last=c"
expect_status 200
expect_jq '.tags == ["latest", "v1.10", "v1.2", "z"]' "last=c gives the tags after c"
req GET "/v2/$R/tags/list?last=zzz"
expect_status 200
expect_jq '(.tags // []) == []' "last=zzz gives no tags"
expect_no_header Link

deviation_end

# n=0: an empty list and no Link.
n_zero()
{
    req GET "/v2/$R/tags/list?n=0"
    expect_status 200
    expect_jq '(.tags // []) == []' "n=0 gives an empty list"
    expect_no_header Link
}
deviates "2.8 ignores n=0" n_zero

# Invalid n: 400 (or ignored).
req GET "/v2/$R/tags/list?n=-1"
expect_status 400 200
req GET "/v2/$R/tags/list?n=abc"
expect_status 400 200

# Unknown repository.
req GET /v2/test/nosuchrepo/tags/list
expect_status 404
expect_json_error NAME_UNKNOWN

# A tag deleted (its manifest deleted by digest) leaves the list.
printf '{"schemaVersion":2,"mediaType":"%s","config":%s,"layers":[],"annotations":{"t":"gone"}}' \
    "$MT_OCI_MANIFEST" "$(descriptor application/vnd.oci.image.config.v1+json "$D/config")" >"$D/gone"
push_manifest "$R" gone "$D/gone" "$MT_OCI_MANIFEST"
req GET "/v2/$R/tags/list"
expect_jq '.tags | index("gone") != null' "gone is listed"
req DELETE "/v2/$R/manifests/$(digest_of "$D/gone")"
expect_status 202
req GET "/v2/$R/tags/list"
expect_jq ".tags | index(\"gone\") == null" "gone is no longer listed"

# --------------------------------------------------------------- _catalog
REPOS=(team/app/web team/app/api team/db alpha zeta 0numeric a.b/c-d/e_f/g__h)
for r in "${REPOS[@]}"; do
    populate "$r" latest
done
ALL_REPOS=$(printf '%s\n' "${REPOS[@]}" "$R" | LC_ALL=C sort | jq -R . | jq -s -c .)
t_note "expected catalog: $ALL_REPOS"

req GET /v2/_catalog
expect_status 200
expect_header_re Content-Type '^application/json'
expect_jq ".repositories == $ALL_REPOS" "every repository, sorted, multi-level names whole"
expect_no_header Link

req GET "/v2/_catalog?n=2"
expect_status 200
expect_jq ".repositories == ($ALL_REPOS | .[0:2])" "first page holds the first 2 repositories"
expect_header_re Link '^<[^>]+>; *rel="next"$'
NEXT=$(link_next)
expect_eq "catalog Link next: n" "$(query_param "$NEXT" n)" 2
expect_eq "catalog Link next: last" "$(query_param "$NEXT" last)" "$(jq -r '.[1]' <<<"$ALL_REPOS")"

# follow_catalog URL: like follow_pages, for .repositories.
follow_catalog()
{
    local url=$1 n=0 all='[]'
    while [[ -n $url ]] && ((n < 50)); do
        req GET "$url"
        [[ $STATUS == 200 ]] || break
        n=$((n + 1))
        all=$(jq -c --argjson all "$all" '$all + (.repositories // [])' "$BODY")
        url=$(link_next)
    done
    GOT=$all
}
for n in 1 2 3 7 8 50; do
    follow_catalog "/v2/_catalog?n=$n"
    expect_eq "catalog paged by n=$n, following Link headers" "$GOT" "$ALL_REPOS"
done
req GET "/v2/_catalog?n=2&last=team/app/api"
expect_status 200
expect_jq '.repositories == ["team/app/web", "team/db"]' "n=2&last=team/app/api"
req GET "/v2/_catalog?last=team/db"
expect_status 200
expect_jq '.repositories == ["test/tags", "zeta"]' "last=team/db"

# Tags of the multi-level repositories.
req GET /v2/team/app/web/tags/list
expect_status 200
expect_jq '.name == "team/app/web" and .tags == ["latest"]' "team/app/web has latest"
req GET /v2/team/app/tags/list
expect_status 404
expect_json_error NAME_UNKNOWN

# ------------------------------------------------------------- the end
req GET /v2/
expect_status 200
server_alive
shoal_stop
finish
