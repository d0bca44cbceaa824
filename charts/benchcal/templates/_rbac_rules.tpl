{{/*
RBAC rules, defined once and used by both install modes. Nothing here grants pods/exec or
Secrets: Jobs mount the Secrets they need by reference and the kubelet reads them.
*/}}

{{/* Operator rules on namespaced resources (ClusterRole in cluster mode, Role per namespace otherwise). */}}
{{- define "benchcal.operatorNamespacedRules" -}}
# Application: the CalibrationRun custom resource (kopf patches its finalizer) and its status.
- apiGroups: ["benchcal.dev"]
  resources: ["calibrationruns"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["benchcal.dev"]
  resources: ["calibrationruns/status"]
  verbs: ["patch"]
# Application: child Jobs carry blockOwnerDeletion owner references to their run; clusters
# with the OwnerReferencesPermissionEnforcement admission plugin (OpenShift) require this.
- apiGroups: ["benchcal.dev"]
  resources: ["calibrationruns/finalizers"]
  verbs: ["update"]
# Application: one evaluator Job per checkpoint plus the reducer Job; patch = spec.suspend.
# No delete: Jobs go with their run through owner references (garbage collection).
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "patch"]
# Application: list a failed Job's pods to read their termination message, and a stuck Job's
# pods to say why they do not run (unschedulable, image pull); never logs, never exec.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list"]
# Application: a Job without pods: its FailedCreate events say why (ServiceAccount missing,
# Pod Security, ResourceQuota, unknown PriorityClass); read by the Job's UID.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["list"]
# Application: a Job Kueue holds suspended: its Workload's QuotaReserved/Admitted conditions
# (read only; harmless where Kueue is not installed).
- apiGroups: ["kueue.x-k8s.io"]
  resources: ["workloads"]
  verbs: ["list"]
# Application: each run's own identity (benchcal_operator/identity.py): a ServiceAccount, a Role
# naming the run's summary ConfigMaps and status, and a RoleBinding, created before its first
# Job and garbage-collected with the run. get: a 409 is checked to be this run's; roles update:
# the Role gets the new summary names when spec.evaluator.shards changes. No delete, no list.
- apiGroups: [""]
  resources: ["serviceaccounts"]
  verbs: ["get", "create"]
- apiGroups: ["rbac.authorization.k8s.io"]
  resources: ["roles"]
  verbs: ["get", "create", "update"]
- apiGroups: ["rbac.authorization.k8s.io"]
  resources: ["rolebindings"]
  verbs: ["get", "create"]
# Application: the run's summary ConfigMaps, created empty (RBAC cannot limit a pod's create to
# names; the pods only patch them). patch is not used by the operator: Kubernetes lets it grant
# (in the run's Role) only what it holds itself (RBAC escalation prevention).
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "create", "patch"]
# Framework (kopf): posts core/v1 Events about the runs (kopf _cogs/clients/events.py: a POST,
# never a patch, never events.k8s.io).
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- end -}}

{{/* Operator rules that only a ClusterRole can grant. */}}
{{- define "benchcal.operatorDiscoveryRules" -}}
# Framework (kopf): notices when the CalibrationRun CRD appears or changes (a list and watch of
# CRDs, kopf _core/reactor/observation.py resource_observer; discovery itself is /apis).
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["list", "watch"]
{{- end -}}
