"""KubeBinderSpawner: Binder launches on Kubernetes, on top of KubeSpawner.

BinderSpawner does the Binder work (validate, resolve, find or build); KubeSpawner runs the pod.
This class adds what only Kubernetes needs: the launch's labels and annotations on the pod, the
launch's Resources (per repository, group and size) as the container's requests and limits, a
NetworkPolicy limiting the pod's egress (created before the pod, removed with the server), resource
guarantees, and a profile choice (kubespawner's profile_list: node selectors, tolerations, sizes)
next to the repository fields of the form.
"""

import html

from kubernetes_asyncio.client.rest import ApiException
from kubespawner import KubeSpawner
from kubespawner.clients import shared_client
from kubespawner.slugs import is_valid_label
from traitlets import Dict, Int, default

from binderspawner import messages
from binderspawner.errors import LaunchError
from binderspawner.homes import PersistentHome, budget_refusal, merge
from binderspawner.homes import records as homerecords
from binderspawner.web import form
from binderspawner.policy.egress import EgressPolicy
from binderspawner.spawner import BinderSpawner
from binderspawner.kubernetes import objects
from binderspawner.kubernetes.builder import KubernetesBuilder

MiB = 1024**2
PROFILE_OPTION = "profile"


class KubeBinderSpawner(BinderSpawner, KubeSpawner):
    """Binder launches as pods; builds in build pods (KubernetesBuilder) pushing to a registry."""

    @default("builder_class")
    def _default_builder_class(self):
        return KubernetesBuilder

    # Guarantees decide how many servers fit on a node; limits what one may use. Without a
    # guarantee Kubernetes reserves the whole limit for every pod.
    @default("cpu_guarantee")
    def _default_cpu_guarantee(self):
        return 0.1

    @default("mem_guarantee")
    def _default_mem_guarantee(self):
        return 256 * MiB

    hub_pod_labels = Dict(
        {"app": "jupyterhub", "component": "hub"},
        help="Labels of the hub pod, whose API port user pods may reach (z2jh's by default).",
    ).tag(config=True)

    hub_api_port = Int(8081, help="The hub API's port, which user pods may reach.").tag(config=True)

    # pod ------------------------------------------------------------------------------------------

    @property
    def server_label(self):
        return self.pod_name if is_valid_label(self.pod_name) else objects.build_pod_name(
            self.pod_name, prefix="server-")

    @property
    def policy_name(self):
        return f"{self.pod_name}-egress"

    async def get_pod_manifest(self):
        # The launch's limits for this pod only: the traits go back to the configured (or
        # profile's) values, which the next launch's policy starts from.
        limits = objects.resource_traits(self.resources, self.extra_resource_limits)
        configured = {name: getattr(self, name) for name in limits}
        try:
            for name, value in limits.items():
                setattr(self, name, value)
            pod = await super().get_pod_manifest()
        finally:
            for name, value in configured.items():
                setattr(self, name, value)
        launch = self.launch.labels if self.launch else {}
        labels, annotations = objects.split_metadata(launch)
        pod.metadata.labels = {**(pod.metadata.labels or {}), **labels,
                               objects.SERVER_LABEL: self.server_label}
        pod.metadata.annotations = {**(pod.metadata.annotations or {}), **annotations}
        return pod

    @property
    def egress(self):
        return EgressPolicy(config=self.config)

    def get_network_policy_manifest(self):
        return objects.server_network_policy(
            self.egress.rules(), name=self.policy_name, server_label=self.server_label,
            hub_labels=self.hub_pod_labels, hub_port=self.hub_api_port)

    # profiles: kubespawner's profile_list, chosen next to the repository --------------------------

    @default("options_form")
    def _default_options_form(self):
        return render_form_with_profiles

    def options_from_form(self, formdata):
        options = super().options_from_form(formdata)
        profile = (formdata.get(PROFILE_OPTION) or [""])[0].strip()
        if profile:
            options[PROFILE_OPTION] = profile
        return options

    def launch_options(self, options):
        # 'profile' is kubespawner's (applied in load_user_options); the launch reads the rest.
        if isinstance(options, dict) and PROFILE_OPTION in options:
            return {k: v for k, v in options.items() if k != PROFILE_OPTION}
        return options

    def profile_choices(self):
        """kubespawner's profile_list, initialized (slugs filled in); [] when it is not a list."""
        profiles = self.profile_list if isinstance(self.profile_list, list) else []
        return self._get_initialized_profile_list(profiles) if profiles else []

    async def start(self):
        # The profile first (kubespawner applies it again when it starts the pod, to the same
        # values): the launch's limits are the profile's, then the policy's on top, as on Docker.
        await KubeSpawner.load_user_options(self)
        return await super().start()

    # persistent homes: kubespawner's storage settings, per launch -----------------------------------

    _configured_storage = None  # the admin's values of the storage traits, added to per launch

    async def prepare_server(self, launch):
        settings = PersistentHome(parent=self)
        names = ("pvc_name", "storage_pvc_ensure", "storage_capacity", "storage_extra_labels",
                 "storage_extra_annotations", "volumes", "volume_mounts", "init_containers")
        if self._configured_storage is None:
            self._configured_storage = {name: getattr(self, name) for name in names}
        for name, value in self._configured_storage.items():
            setattr(self, name, value)
        if not settings.enabled:
            return
        store = homerecords.HomeRecords(self.lifecycle.lifecycle_dir)
        home, old = homerecords.choose(store, settings, self.lifecycle.hub_id, self.user.name,
                                       launch.quota_key, fresh=launch.request.fresh_home)
        known = home.name in store.last_used()
        if not known:
            problem = budget_refusal(settings.total_budget, homerecords.measured_bytes(self.lifecycle.lifecycle_dir))
            if problem:
                raise LaunchError(problem, status=507)
        commit = launch.resolved.version
        needs_merge = store.merged_commit(home.name) != commit
        traits = objects.home_storage(home, settings.mount_path or "/home/jovyan",
                                      settings.size_limit or "10Gi",
                                      (launch.image, commit, merge.MERGE_SOURCE) if needs_merge else None)
        for name, value in traits.items():
            configured = self._configured_storage[name]
            if isinstance(value, list):
                value = [*(configured or []), *value]
            elif isinstance(value, dict):
                value = {**(configured or {}), **value}
            setattr(self, name, value)
        store.used(home)
        store.merged(home.name, commit)  # the init container merges; its result is in the home's note file
        if old is not None:
            store.set_generation(home.user, home.repository, home.generation)
            self.progress_log.report(messages.HOME_FRESH.format(name=home.name, old=old.name,
                                                                days=settings.expire_days))
            self.forget_fresh_home_option()
        shared = homerecords.home_ever_shared(self.db, home.name) if getattr(self, "db", None) else None
        if shared:
            self.progress_log.report(messages.HOME_EVER_SHARED.format(
                when=shared if not isinstance(shared, bool) else "an earlier day"))
        if not known:
            self.progress_log.report(messages.HOME_NEW.format(name=home.name))
        elif needs_merge:
            self.progress_log.report(messages.HOME_MERGING_K8S.format(commit=commit[:12], name=home.name))
        else:
            self.progress_log.report(messages.HOME_KEPT.format(name=home.name))
        self.launch_state = {**self.launch_state, "home": home.name}

    # egress policy lifecycle ----------------------------------------------------------------------

    async def load_user_options(self):
        await super().load_user_options()
        # The profile may change the namespace; the pod does not exist yet: the policy is in
        # place before the server's first packet.
        if self.egress.enabled:
            await self.ensure_network_policy()

    @property
    def networking_api(self):
        return shared_client("NetworkingV1Api")

    async def ensure_network_policy(self):
        manifest = self.get_network_policy_manifest()
        api = self.networking_api
        try:
            await api.create_namespaced_network_policy(self.namespace, manifest,
                                                       _request_timeout=self.k8s_api_request_timeout)
        except ApiException as e:
            if e.status != 409:
                raise
            await api.replace_namespaced_network_policy(self.policy_name, self.namespace, manifest,
                                                        _request_timeout=self.k8s_api_request_timeout)

    async def delete_network_policy(self):
        try:
            await self.networking_api.delete_namespaced_network_policy(
                self.policy_name, self.namespace, _request_timeout=self.k8s_api_request_timeout)
        except ApiException as e:
            if e.status != 404:
                self.log.warning("Could not delete NetworkPolicy %s: %s", self.policy_name, e.reason)

    async def stop(self, now=False):
        try:
            return await super().stop(now=now)
        finally:
            if self.egress.enabled:
                await self.delete_network_policy()


def render_form_with_profiles(spawner):
    """The Binder form, plus a choice of kubespawner profile when profile_list is a list."""
    html_form = form.render_form(spawner)
    profiles = spawner.profile_choices()
    if not profiles:
        return html_form
    options = "".join(
        f'<option value="{html.escape(p["slug"])}"{" selected" if p.get("default") else ""}>'
        f'{html.escape(p.get("display_name", p["slug"]))}</option>'
        for p in profiles)
    return html_form + ('<div class="form-group mb-2"><label for="binder-profile" class="form-label">'
                        'Resources</label><select class="form-control" id="binder-profile" '
                        f'name="{PROFILE_OPTION}">{options}</select></div>')
