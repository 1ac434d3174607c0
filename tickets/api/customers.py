from django.db.models import Q
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from tickets import customers, selectors
from tickets.api.schema import CONFLICT
from tickets.api.serializers import CustomerDetailSerializer, CustomerSerializer
from tickets.exceptions import InvalidIdentity
from tickets.identities import normalize_address
from tickets.models import Channel


class CustomerPagination(CursorPagination):
    ordering = "-id"


class CustomerListApi(generics.ListAPIView):
    serializer_class = CustomerSerializer
    pagination_class = CustomerPagination
    filter_backends = []

    def get_queryset(self):
        found = selectors.customers_for_agent(self.request.user)
        query = self.request.query_params.get("q", "").strip()
        if "\x00" in query:
            raise serializers.ValidationError({"q": ["Null characters are not allowed."]})
        if query:
            found = found.filter(Q(name__icontains=query) | Q(identities__address__iexact=query)).distinct()
        return found

    class CustomerCreateInput(serializers.Serializer):
        class IdentityInput(serializers.Serializer):
            channel = serializers.ChoiceField(choices=Channel.choices)
            address = serializers.CharField(max_length=320)
            display_name = serializers.CharField(max_length=200, required=False, default="")

            def validate(self, attrs):
                try:
                    normalize_address(attrs["channel"], attrs["address"])
                except InvalidIdentity as error:
                    raise serializers.ValidationError({"address": [str(error)]}) from None
                return attrs

        name = serializers.CharField(max_length=200)
        locale = serializers.CharField(max_length=8, required=False, default="")
        timezone = serializers.CharField(max_length=64, required=False, default="")
        notes = serializers.CharField(required=False, allow_blank=True, default="")
        identities = IdentityInput(many=True, required=False, default=list)

    @extend_schema(parameters=[OpenApiParameter("q", str, description="Name or exact address")])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(request=CustomerCreateInput, responses={201: CustomerDetailSerializer, 409: CONFLICT})
    def post(self, request):
        data = self.CustomerCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        customer = customers.create_customer(actor=request.user, **data.validated_data)
        detail = selectors.customer_for_agent(request.user, customer.pk)
        return Response(CustomerDetailSerializer(detail).data, status=status.HTTP_201_CREATED)


class CustomerDetailApi(APIView):
    @extend_schema(responses=CustomerDetailSerializer)
    def get(self, request, customer_id: int):
        customer = selectors.customer_for_agent(request.user, customer_id)
        return Response(CustomerDetailSerializer(customer).data)
