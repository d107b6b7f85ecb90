"""Django admin for galaxies, their aliases and cached images."""
from django.contrib import admin
from django.utils.html import format_html

from .models import Galaxy, GalaxyAlias, GalaxyImage


class GalaxyAliasInline(admin.TabularInline):
    model = GalaxyAlias
    extra = 0
    fields = ("name", "key")
    readonly_fields = ("key",)


class GalaxyImageInline(admin.TabularInline):
    model = GalaxyImage
    extra = 0
    fields = ("preview", "kind", "source", "width", "height", "fov_arcmin", "rotation_deg")
    readonly_fields = ("preview", "width", "height")

    @admin.display(description="image")
    def preview(self, obj: GalaxyImage) -> str:
        return format_html('<img src="{}" width="96" height="96" alt="">', obj.file.url) if obj.file else "-"


@admin.register(Galaxy)
class GalaxyAdmin(admin.ModelAdmin):
    list_display = ("name", "pgc", "ra", "dec", "d25_arcmin", "pa", "morph_type", "source", "labeling_priority")
    list_filter = ("source",)
    search_fields = ("name", "name_key", "=pgc", "aliases__key")
    readonly_fields = ("name_key", "created_at", "updated_at")
    inlines = [GalaxyAliasInline, GalaxyImageInline]
    show_full_result_count = False  # counting millions of LEDA rows on every page is slow


@admin.register(GalaxyImage)
class GalaxyImageAdmin(admin.ModelAdmin):
    list_display = ("galaxy", "kind", "source", "width", "height", "created_at")
    list_filter = ("kind", "source")
    raw_id_fields = ("galaxy",)
    search_fields = ("galaxy__name", "=galaxy__pgc", "sha256")


def _save_with_key(self: GalaxyAdmin, request, obj: Galaxy, form, change: bool) -> None:  # noqa: ANN001
    from .names import normalise_name

    obj.name_key = normalise_name(obj.name)  # look-ups use the key, so staff edits must keep it current
    obj.save()


GalaxyAdmin.save_model = _save_with_key  # type: ignore[method-assign]
