"""The fields each object accepts, as data: what kubectl's strict field validation knows.

A field listed here that netlab does not read is reported once as ignored (a real cluster would use
it; netlab does not emulate it). A field that is not listed is refused as unknown, with the closest
known name as a suggestion, as `kubectl apply --validate=strict` does.

Each entry maps an object type to {field: the type of its value}, where that type is another entry
when netlab reads inside the value (so its fields are checked too), else None. The Kubernetes types
follow the API reference (core/v1 Pod, Container, Service, Namespace; apps/v1 Deployment; meta/v1
ObjectMeta); the Cluster entry is netlab's own format plus kind's (kind.x-k8s.io/v1alpha4) config.
Fields of recent Kubernetes releases are listed too, so a manifest taken from a live cluster
(`kubectl get -o yaml`: status, managedFields, creationTimestamp...) is never refused.
"""
from __future__ import annotations


def _fields(names: str, **typed: str) -> dict[str, str | None]:
    out: dict[str, str | None] = {n: None for n in names.split()}
    out.update(typed)
    return out


OBJECT = "apiVersion kind status"

KNOWN: dict[str, dict[str, str | None]] = {
    # ---- Kubernetes objects
    "Pod": _fields(OBJECT, metadata="ObjectMeta", spec="PodSpec"),
    "Deployment": _fields(OBJECT, metadata="ObjectMeta", spec="DeploymentSpec"),
    "Service": _fields(OBJECT, metadata="ObjectMeta", spec="ServiceSpec"),
    "Namespace": _fields(OBJECT + " spec", metadata="ObjectMeta"),
    "ReplicaSet": _fields(OBJECT, metadata="ObjectMeta", spec="ReplicaSetSpec"),
    "ReplicaSetSpec": _fields("replicas minReadySeconds", selector="LabelSelector", template="PodTemplateSpec"),
    "StatefulSet": _fields(OBJECT, metadata="ObjectMeta", spec="StatefulSetSpec"),
    "StatefulSetSpec": _fields("replicas serviceName podManagementPolicy minReadySeconds revisionHistoryLimit "
                               "volumeClaimTemplates persistentVolumeClaimRetentionPolicy",
                               selector="LabelSelector", template="PodTemplateSpec",
                               updateStrategy="StatefulSetUpdateStrategy", ordinals="StatefulSetOrdinals"),
    "StatefulSetUpdateStrategy": _fields("type", rollingUpdate="RollingUpdateStatefulSetStrategy"),
    "RollingUpdateStatefulSetStrategy": _fields("partition maxUnavailable"),
    "StatefulSetOrdinals": _fields("start"),
    "DaemonSet": _fields(OBJECT, metadata="ObjectMeta", spec="DaemonSetSpec"),
    "DaemonSetSpec": _fields("minReadySeconds revisionHistoryLimit", selector="LabelSelector",
                             template="PodTemplateSpec", updateStrategy="DaemonSetUpdateStrategy"),
    "DaemonSetUpdateStrategy": _fields("type", rollingUpdate="RollingUpdateDaemonSet"),
    "RollingUpdateDaemonSet": _fields("maxSurge maxUnavailable"),
    "Ingress": _fields(OBJECT, metadata="ObjectMeta", spec="IngressSpec"),
    "IngressSpec": _fields("ingressClassName", defaultBackend="IngressBackend", tls="IngressTLS",
                           rules="IngressRule"),
    "IngressBackend": _fields("", service="IngressServiceBackend", resource="TypedLocalObjectReference"),
    "IngressServiceBackend": _fields("name", port="ServiceBackendPort"),
    "ServiceBackendPort": _fields("name number"),
    "TypedLocalObjectReference": _fields("apiGroup kind name"),
    "IngressTLS": _fields("hosts secretName"),
    "IngressRule": _fields("host", http="HTTPIngressRuleValue"),
    "HTTPIngressRuleValue": _fields("", paths="HTTPIngressPath"),
    "HTTPIngressPath": _fields("path pathType", backend="IngressBackend"),
    "IngressClass": _fields(OBJECT, metadata="ObjectMeta", spec="IngressClassSpec"),
    "IngressClassSpec": _fields("controller", parameters="IngressClassParameters"),
    "IngressClassParameters": _fields("apiGroup kind name namespace scope"),
    "ConfigMap": _fields(OBJECT + " data binaryData immutable", metadata="ObjectMeta"),
    "Secret": _fields(OBJECT + " data stringData type immutable", metadata="ObjectMeta"),
    "ServiceAccount": _fields(OBJECT + " secrets imagePullSecrets automountServiceAccountToken",
                              metadata="ObjectMeta"),
    "EndpointSlice": _fields(OBJECT + " addressType", metadata="ObjectMeta", endpoints="Endpoint",
                             ports="EndpointPort"),
    "Endpoint": _fields("addresses hostname nodeName zone targetRef hints deprecatedTopology",
                        conditions="EndpointConditions"),
    "EndpointConditions": _fields("ready serving terminating"),
    "EndpointPort": _fields("name port protocol appProtocol"),
    "Endpoints": _fields(OBJECT, metadata="ObjectMeta", subsets="EndpointSubset"),
    "EndpointSubset": _fields("", addresses="EndpointAddress", notReadyAddresses="EndpointAddress",
                              ports="EndpointPort"),
    "EndpointAddress": _fields("ip hostname nodeName targetRef"),
    "List": _fields("apiVersion kind metadata items"),  # only `items` is read (a misspelt one is named)
    "ObjectMeta": _fields(
        "name generateName namespace selfLink uid resourceVersion generation creationTimestamp deletionTimestamp "
        "deletionGracePeriodSeconds labels annotations ownerReferences finalizers managedFields "
        "clusterName"),  # clusterName: removed in 1.24, still in manifests saved from older clusters
    "PodSpec": _fields(
        "volumes initContainers ephemeralContainers restartPolicy terminationGracePeriodSeconds "
        "activeDeadlineSeconds dnsPolicy nodeSelector serviceAccountName serviceAccount "
        "automountServiceAccountToken nodeName hostNetwork hostPID hostIPC shareProcessNamespace securityContext "
        "imagePullSecrets hostname subdomain affinity schedulerName priorityClassName priority "
        "readinessGates runtimeClassName enableServiceLinks preemptionPolicy overhead "
        "topologySpreadConstraints setHostnameAsFQDN os hostUsers schedulingGates resourceClaims resources",
        containers="Container", tolerations="Toleration", dnsConfig="PodDNSConfig", hostAliases="HostAlias"),
    "PodDNSConfig": _fields("nameservers searches", options="PodDNSConfigOption"),
    "PodDNSConfigOption": _fields("name value"),
    "HostAlias": _fields("ip hostnames"),
    "Container": _fields(
        "name image command args workingDir envFrom resources resizePolicy restartPolicy volumeMounts "
        "volumeDevices terminationMessagePath terminationMessagePolicy imagePullPolicy "
        "securityContext stdin stdinOnce tty",
        ports="ContainerPort", env="EnvVar", livenessProbe="Probe", readinessProbe="Probe",
        startupProbe="Probe", lifecycle="Lifecycle"),
    "Lifecycle": _fields("stopSignal", preStop="LifecycleHandler", postStart="LifecycleHandler"),
    "LifecycleHandler": _fields("exec httpGet tcpSocket sleep"),
    "ContainerPort": _fields("name hostPort containerPort protocol hostIP"),
    "EnvVar": _fields("name value valueFrom"),
    "Toleration": _fields("key operator value effect tolerationSeconds"),
    "Probe": _fields(
        "exec httpGet tcpSocket grpc initialDelaySeconds timeoutSeconds periodSeconds successThreshold "
        "failureThreshold terminationGracePeriodSeconds"),
    "DeploymentSpec": _fields(
        "replicas minReadySeconds revisionHistoryLimit paused progressDeadlineSeconds",
        selector="LabelSelector", template="PodTemplateSpec", strategy="DeploymentStrategy"),
    "DeploymentStrategy": _fields("type", rollingUpdate="RollingUpdateDeployment"),
    "RollingUpdateDeployment": _fields("maxSurge maxUnavailable"),
    "LabelSelector": _fields("matchLabels matchExpressions"),
    "PodTemplateSpec": _fields("", metadata="ObjectMeta", spec="PodSpec"),
    "ServiceSpec": _fields(
        "selector clusterIP clusterIPs type externalIPs sessionAffinity loadBalancerIP loadBalancerSourceRanges "
        "externalName externalTrafficPolicy healthCheckNodePort publishNotReadyAddresses ipFamilies "
        "ipFamilyPolicy allocateLoadBalancerNodePorts loadBalancerClass internalTrafficPolicy "
        "trafficDistribution topologyKeys",  # topologyKeys: removed in 1.22, still in old manifests
        ports="ServicePort", sessionAffinityConfig="SessionAffinityConfig"),
    "ServicePort": _fields("name protocol appProtocol port targetPort nodePort"),
    "SessionAffinityConfig": _fields("", clientIP="ClientIPConfig"),
    "ClientIPConfig": _fields("timeoutSeconds"),
    # ---- the Cluster document: netlab's fields, then kind's (those netlab drops are reported as ignored)
    "Cluster": _fields(
        "apiVersion kind name featureGates runtimeConfig kubeadmConfigPatches kubeadmConfigPatchesJSON6902 "
        "containerdConfigPatches containerdConfigPatchesJSON6902",
        metadata="ObjectMeta", networking="ClusterNetworking", nodes="ClusterNode", expectations="Expectation",
        controlPlane="ClusterControlPlane", dns="ClusterDNS", loadBalancer="ClusterLoadBalancer",
        ingress="ClusterIngress", hosts="ClusterHost", hostNetwork="ClusterHostNetwork"),
    "ClusterHost": _fields("name address interface nodes"),
    "ClusterHostNetwork": _fields("mode segment mtu vni port store"),
    "ClusterLoadBalancer": _fields("", pools="ClusterLBPool"),
    "ClusterLBPool": _fields("name addresses autoAssign avoidBuggyIPs"),
    "ClusterIngress": _fields("className defaultClass serviceType httpNodePort httpsNodePort replicas "
                              "externalTrafficPolicy loadBalancerIP"),
    "ClusterControlPlane": _fields("nodeMonitorGracePeriod defaultTolerationSeconds"),
    "ClusterDNS": _fields("pods ttl upstreamNameservers replicas"),
    "ClusterNetworking": _fields(
        "podSubnet serviceSubnet nodeSubnet nodeCIDRMaskSize backend kubeProxyMode iptablesFlavour ipvsScheduler ipvsStrictARP "
        "nftablesEndpointChoice networkPolicyRenderer dnsDomain mtu serviceNodePortRange ipFamily "
        "disableDefaultCNI apiServerAddress apiServerPort dnsSearch"),
    "ClusterNode": _fields(
        "role name host labels image extraMounts extraPortMappings kubeadmConfigPatches kubeadmConfigPatchesJSON6902"),
    "Expectation": _fields("from to expect backends protocol"),
}
