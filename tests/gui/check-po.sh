#!/bin/sh
# check-po.sh SOURCE_ROOT - every string listed in po/POTFILES has a German
# translation in po/de.po (none missing, none fuzzy), and de.po compiles.
set -u
root=$1
for tool in xgettext msgmerge msgfmt; do
  command -v $tool >/dev/null 2>&1 || { echo "SKIP: $tool not found"; exit 77; }
done
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
cd "$root" || exit 1
# The options of meson's glib preset, plus the XML/desktop extractors.
xgettext --from-code=UTF-8 --add-comments --keyword=_ --keyword=N_ --keyword=C_:1c,2 --keyword=NC_:1c,2 \
  --keyword=g_dcgettext:2 --keyword=g_dngettext:2,3 --keyword=g_dpgettext2:2c,3 \
  --flag=N_:1:pass-c-format --flag=C_:2:pass-c-format --flag=NC_:2:pass-c-format \
  --flag=g_dngettext:2:pass-c-format --flag=g_strdup_printf:1:c-format \
  --flag=g_string_printf:2:c-format --flag=g_string_append_printf:2:c-format \
  --flag=g_error_new:3:c-format --flag=g_set_error:4:c-format \
  --files-from=po/POTFILES -o "$tmp/all.pot" || { echo "xgettext failed"; exit 1; }
msgmerge --quiet --no-fuzzy-matching -o "$tmp/de.po" po/de.po "$tmp/all.pot" || exit 1
stats=$(LC_ALL=C msgfmt --check --statistics -o /dev/null "$tmp/de.po" 2>&1) || { echo "$stats"; exit 1; }
echo "de.po: $stats"
case "$stats" in
  *untranslated*|*fuzzy*)
    echo "de.po is missing translations; run: ninja -C build unet-workbench-update-po, then translate"
    msgattrib --untranslated --no-obsolete "$tmp/de.po" 2>/dev/null | grep '^msgid' | head -40
    exit 1 ;;
esac
msgfmt --check -o /dev/null po/de.po || exit 1
exit 0
